// The relay over a real PostgreSQL outbox, to a real RabbitMQ and NATS JetStream: what the
// application commits is published with its id; what it rolls back never is; a message the broker
// keeps refusing is retried with backoff, dead-lettered, and revived.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstream } from '@nats-io/jetstream';
import { headers, type NatsConnection, connect as natsConnect } from '@nats-io/transport-node';
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { amqpPublisher, jetstreamPublisher, OutboxRelay } from '../../src/messaging/index.js';
import { amqpUrl, natsUrl } from './brokers.js';
import {
  amqpRoute,
  jetstreamRoute,
  OutboxTable,
  storedMessages,
  takeAll,
  uniqueName,
} from './fixtures/relay-fixtures.js';

/** Resolves when `check` holds; fails after 20 s (a liveness bound, not a timing claim). */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('the relay from PostgreSQL to RabbitMQ', () => {
  let connection: ChannelModel;
  let channel: ConfirmChannel;
  let table: OutboxTable;
  const exchange = uniqueName('relay_x');
  const queue = uniqueName('relay_q');

  before(async () => {
    connection = await amqp.connect(amqpUrl);
    channel = await connection.createConfirmChannel();
    await amqpRoute(channel, exchange, queue);
    table = new OutboxTable(uniqueName('outbox_relay_amqp'));
  });
  after(async () => {
    await table.drop();
    await channel.deleteQueue(queue).catch(() => {});
    await channel.deleteExchange(exchange).catch(() => {});
    await connection.close();
  });

  it('publishes what a transaction committed with its outbox id as message-id, and nothing it rolled back', async () => {
    const committed = await table.enqueue([
      { topic: 'orders.created', key: 'order-1', payload: { order: 1 }, headers: { 'x-tenant': 'acme' } },
      { topic: 'orders.paid', key: 'order-1', payload: { order: 1, paid: true } },
      { id: 'fixed-id-1', topic: 'orders.created', payload: 'text body' },
    ]);
    await table.enqueue([{ topic: 'orders.created', payload: { ghost: true } }], { rollback: true });
    const relay = new OutboxRelay({ outbox: table.outbox, publisher: amqpPublisher({ channel, exchange }) });
    assert.deepEqual(await relay.drain(), { claimed: 3, published: 3, failed: 0, dead: 0 });
    const delivered = await takeAll(channel, queue);
    assert.deepEqual(delivered.map((message) => message.properties.messageId).sort(), [...committed].sort());
    const first = delivered.find((message) => message.properties.messageId === committed[0]);
    assert.equal(first?.properties.headers?.['x-tenant'], 'acme');
    assert.equal(first?.fields.routingKey, 'orders.created');
    assert.deepEqual(JSON.parse(first?.content.toString() ?? ''), { order: 1 });
    const order = delivered.map((message) => message.properties.messageId);
    assert.ok(order.indexOf(committed[0]) < order.indexOf(committed[1]), 'a key keeps its enqueue order');
    assert.deepEqual(await table.outbox.counts(), { pending: 0, published: 3, dead: 0 });
  });

  it('retries a message the broker keeps refusing with backoff, dead-letters it, and publishes it once revived', async () => {
    // Under `mandatory`, a message no queue is bound for comes back: the relay counts it failed.
    const topic = uniqueName('nobody_listens');
    const [id = ''] = await table.enqueue([{ topic, payload: 'x' }]);
    const errors: unknown[] = [];
    const passes: { failed: number; dead: number }[] = [];
    const relay = new OutboxRelay({
      outbox: table.outbox,
      publisher: amqpPublisher({ channel, exchange: '', mandatory: true }),
      maxAttempts: 3,
      pollMs: 10,
      backoff: { baseMs: 20, maxMs: 40 },
      onError: (error) => errors.push(error),
      onPass: (result) => passes.push(result),
    }).start();
    await eventually(async () => (await table.outbox.counts()).dead === 1, 'the message dead-lettered');
    await relay.stop();
    assert.deepEqual(errors, []);
    assert.equal(
      passes.reduce((sum, pass) => sum + pass.failed, 0),
      2,
      'two failures retried',
    );
    const [dead] = await table.outbox.dead();
    assert.equal(dead?.id, id);
    assert.equal(dead?.attempts, 3);
    assert.match(dead?.lastError ?? '', /unroutable/);

    // Bound now: the revived message goes out on the next pass.
    await channel.assertQueue(topic, { durable: false });
    try {
      assert.equal(await table.outbox.revive(id), true);
      const again = new OutboxRelay({
        outbox: table.outbox,
        publisher: amqpPublisher({ channel, exchange: '', mandatory: true }),
      });
      assert.deepEqual(await again.drain(), { claimed: 1, published: 1, failed: 0, dead: 0 });
      assert.deepEqual(
        (await takeAll(channel, topic)).map((message) => message.properties.messageId),
        [id],
      );
    } finally {
      await channel.deleteQueue(topic).catch(() => {});
    }
  });
});

describe('the relay from PostgreSQL to JetStream', () => {
  let nc: NatsConnection;
  let table: OutboxTable;
  const stream = uniqueName('RELAY_S');
  const subject = uniqueName('relaysubj');

  before(async () => {
    nc = await natsConnect({ servers: natsUrl });
    await jetstreamRoute(nc, stream, subject);
    table = new OutboxTable(uniqueName('outbox_relay_js'));
  });
  after(async () => {
    await table.drop();
    const { jetstreamManager } = await import('@nats-io/jetstream');
    await (await jetstreamManager(nc)).streams.delete(stream).catch(() => {});
    await nc.close();
  });

  it('publishes what a transaction committed with its outbox id as Nats-Msg-Id', async () => {
    const messages = Array.from({ length: 250 }, (_, index) => ({
      topic: `${subject}.orders`,
      key: `order-${index % 5}`,
      payload: { index },
      headers: { 'x-index': String(index) },
    }));
    const ids = await table.enqueue(messages);
    const relay = new OutboxRelay({
      outbox: table.outbox,
      publisher: jetstreamPublisher({ js: jetstream(nc), headers }),
    });
    const total = await relay.drain();
    assert.deepEqual(total, { claimed: 250, published: 250, failed: 0, dead: 0 });
    const { jetstreamManager } = await import('@nats-io/jetstream');
    const stored = await storedMessages(nc, await jetstreamManager(nc), stream);
    assert.deepEqual(stored.map((message) => message.id).sort(), [...ids].sort());
    // Each key's messages are stored in enqueue order.
    for (let key = 0; key < 5; key++) {
      const indexes = stored.map((message) => (JSON.parse(message.body) as { index: number }).index);
      const ofKey = indexes.filter((index) => index % 5 === key);
      assert.deepEqual(
        ofKey,
        [...ofKey].sort((a, b) => a - b),
        `key order-${key}`,
      );
    }
  });
});
