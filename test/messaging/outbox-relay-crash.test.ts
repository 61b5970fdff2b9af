// Duplicates end to end, and relays side by side, with real processes. A relay SIGKILLed after
// the broker confirmed a batch and before the pass marked it leaves those messages pending: the
// next relay publishes them again, with the same ids, and the consumer's inbox (RabbitMQ) or
// JetStream's duplicate window removes the second copy. Two relays over one outbox never publish
// one message twice, and keep each key's order.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { type NatsConnection, connect as natsConnect } from '@nats-io/transport-node';
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { AdminStore } from '../../src/core/store.js';
import { Inbox } from '../../src/messaging/index.js';
import type { OutboxMessage } from '../../src/messaging/outbox/outbox.js';
import { runChild } from '../kill-child.js';
import { createStore, dropStore } from '../stores/postgres.factory.js';
import { amqpUrl, natsUrl } from './brokers.js';
import {
  amqpRoute,
  jetstreamRoute,
  OutboxTable,
  storedMessages,
  takeAll,
  tally,
  uniqueName,
} from './fixtures/relay-fixtures.js';
import type { RelayJob, RelayReport } from './fixtures/relay-worker.js';

const workerPath = new URL('./fixtures/relay-worker.ts', import.meta.url).pathname;

function reportOf(stdout: string): RelayReport {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line) as RelayReport;
}

/** Starts one relay child per job, lets them all start together once each is connected, and waits for their reports. */
async function relaysAtOnce(jobs: RelayJob[]): Promise<RelayReport[]> {
  const children = jobs.map((job) =>
    spawn(process.execPath, [...process.execArgv, workerPath, JSON.stringify({ ...job, gate: true })], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, KILL_AT: '' },
    }),
  );
  const outputs = children.map((child) => {
    let stdout = '';
    let ready: () => void = () => {};
    const isReady = new Promise<void>((resolve) => (ready = resolve));
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      if (stdout.startsWith('ready\n')) ready();
    });
    const done = new Promise<string>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`relay exited ${code}`))));
    });
    return { isReady, done };
  });
  await Promise.all(outputs.map((output) => output.isReady));
  for (const child of children) child.stdin.end('go\n');
  return (await Promise.all(outputs.map((output) => output.done))).map(reportOf);
}

/** `count` messages: a quarter without a key, the rest on `keys` keys, each with its place in its key's order. */
function messages(topic: string, count: number, keys: number): OutboxMessage[] {
  return Array.from({ length: count }, (_, index) => {
    const key = index % 4 === 0 ? undefined : `k${index % keys}`;
    return { topic, payload: { index, key: key ?? null }, ...(key === undefined ? {} : { key }) };
  });
}

/** Asserts that, for each key, the payloads arrived in increasing index (enqueue) order. */
function assertKeyOrder(bodies: readonly string[]): void {
  const lastOfKey = new Map<string, number>();
  for (const body of bodies) {
    const { index, key } = JSON.parse(body) as { index: number; key: string | null };
    if (key === null) continue;
    assert.ok((lastOfKey.get(key) ?? -1) < index, `key ${key}: ${index} arrived after ${lastOfKey.get(key)}`);
    lastOfKey.set(key, index);
  }
}

describe('relays to RabbitMQ, killed and side by side', () => {
  let connection: ChannelModel;
  let channel: ConfirmChannel;
  let inboxStore: AdminStore;
  const inboxNamespace = uniqueName('relay_inbox');
  const tables: OutboxTable[] = [];

  before(async () => {
    connection = await amqp.connect(amqpUrl);
    channel = await connection.createConfirmChannel();
    inboxStore = await createStore(inboxNamespace);
  });
  after(async () => {
    for (const table of tables) await table.drop();
    await inboxStore.close();
    await dropStore(inboxNamespace);
    await connection.close();
  });

  it('a relay killed between the broker confirm and the mark publishes twice; the inbox processes each message once', async () => {
    const table = new OutboxTable(uniqueName('outbox_crash_amqp'));
    tables.push(table);
    const exchange = uniqueName('crash_x');
    const queue = uniqueName('crash_q');
    await amqpRoute(channel, exchange, queue);
    try {
      const ids = await table.enqueue(messages('orders.placed', 60, 6));
      const job: RelayJob = { table: table.table, broker: 'amqp', exchange, batchSize: 25 };

      const killed = await runChild(workerPath, job, 'after-publish');
      assert.equal(killed.signal, 'SIGKILL');
      assert.deepEqual(await table.outbox.counts(), { pending: 60, published: 0, dead: 0 }, 'nothing was marked');

      const second = await runChild(workerPath, job);
      assert.equal(second.code, 0);
      assert.equal(reportOf(second.stdout).published, 60);

      const delivered = await takeAll(channel, queue);
      const deliveries = tally(delivered.map((message) => String(message.properties.messageId)));
      const twice = [...deliveries.values()].filter((count) => count === 2).length;
      assert.ok(twice > 0 && twice <= 25, `the killed relay's confirmed batch was delivered again (${twice})`);
      assert.equal(deliveries.size, 60);

      const inbox = new Inbox({ store: inboxStore, consumer: 'billing' });
      const effects: string[] = [];
      const outcomes: string[] = [];
      for (const message of delivered) {
        const id = String(message.properties.messageId);
        const outcome = await inbox.consume({ id, payload: message.content.toString() }, () => effects.push(id));
        outcomes.push(outcome.kind);
      }
      assert.equal(effects.length, 60, 'the handler ran once per message');
      assert.deepEqual(new Set(effects), new Set(ids));
      assert.equal(outcomes.filter((kind) => kind === 'duplicate').length, twice);
      assert.deepEqual(await table.outbox.counts(), { pending: 0, published: 60, dead: 0 });
    } finally {
      await channel.deleteQueue(queue).catch(() => {});
      await channel.deleteExchange(exchange).catch(() => {});
    }
  });

  it('two relays at once publish every one of 3000 messages once, each key in order', async () => {
    const table = new OutboxTable(uniqueName('outbox_pair_amqp'));
    tables.push(table);
    const exchange = uniqueName('pair_x');
    const queue = uniqueName('pair_q');
    await amqpRoute(channel, exchange, queue);
    try {
      const ids = await table.enqueue(messages('orders.placed', 3000, 100));
      const job: RelayJob = { table: table.table, broker: 'amqp', exchange, batchSize: 100 };
      const reports = await relaysAtOnce([job, job]);
      assert.equal(
        reports.reduce((sum, report) => sum + report.published, 0),
        3000,
      );
      assert.ok(
        reports.every((report) => report.published > 0),
        `both relays published: ${JSON.stringify(reports)}`,
      );

      const delivered = await takeAll(channel, queue);
      const deliveries = tally(delivered.map((message) => String(message.properties.messageId)));
      assert.equal(delivered.length, 3000, 'no message delivered twice');
      assert.deepEqual(new Set(deliveries.keys()), new Set(ids));
      assertKeyOrder(delivered.map((message) => message.content.toString()));
    } finally {
      await channel.deleteQueue(queue).catch(() => {});
      await channel.deleteExchange(exchange).catch(() => {});
    }
  });
});

describe('relays to JetStream, killed and side by side', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const streams: string[] = [];
  const tables: OutboxTable[] = [];

  before(async () => {
    nc = await natsConnect({ servers: natsUrl });
    jsm = await jetstreamManager(nc);
  });
  after(async () => {
    for (const table of tables) await table.drop();
    for (const stream of streams) await jsm.streams.delete(stream).catch(() => {});
    await nc.close();
  });

  it("a relay killed between the PubAck and the mark publishes twice; JetStream's duplicate window stores each once", async () => {
    const table = new OutboxTable(uniqueName('outbox_crash_js'));
    tables.push(table);
    const stream = uniqueName('CRASH');
    const subject = uniqueName('crash');
    streams.push(stream);
    await jetstreamRoute(nc, stream, subject);
    const ids = await table.enqueue(messages(`${subject}.orders`, 60, 6));
    const job: RelayJob = { table: table.table, broker: 'jetstream', batchSize: 25 };

    const killed = await runChild(workerPath, job, 'after-publish');
    assert.equal(killed.signal, 'SIGKILL');
    assert.deepEqual(await table.outbox.counts(), { pending: 60, published: 0, dead: 0 });
    const afterKill = (await jsm.streams.info(stream)).state.messages;
    assert.ok(afterKill > 0 && afterKill <= 25, `the killed relay's batch is in the stream (${afterKill})`);

    const second = await runChild(workerPath, job);
    assert.equal(second.code, 0);
    assert.equal(reportOf(second.stdout).published, 60, 'the second relay publishes all 60, duplicates included');

    const stored = await storedMessages(nc, jsm, stream);
    assert.equal(stored.length, 60, 'each id stored once');
    assert.deepEqual(new Set(stored.map((message) => message.id)), new Set(ids));
    assertKeyOrder(stored.map((message) => message.body));
  });

  it('two relays at once store every one of 3000 messages once, each key in order', async () => {
    const table = new OutboxTable(uniqueName('outbox_pair_js'));
    tables.push(table);
    const stream = uniqueName('PAIR');
    const subject = uniqueName('pair');
    streams.push(stream);
    await jetstreamRoute(nc, stream, subject);
    const ids = await table.enqueue(messages(`${subject}.orders`, 3000, 100));
    const job: RelayJob = { table: table.table, broker: 'jetstream', batchSize: 100 };
    const reports = await relaysAtOnce([job, job]);
    assert.equal(
      reports.reduce((sum, report) => sum + report.published, 0),
      3000,
    );
    assert.ok(
      reports.every((report) => report.published > 0),
      `both relays published: ${JSON.stringify(reports)}`,
    );
    const stored = await storedMessages(nc, jsm, stream);
    assert.equal(stored.length, 3000);
    assert.deepEqual(new Set(stored.map((message) => message.id)), new Set(ids));
    assertKeyOrder(stored.map((message) => message.body));
  });
});
