// `idem outbox` as users run it: the built command (run `npm run build` first), on a PostgreSQL
// outbox table this process fills, publishing to the local RabbitMQ and NATS JetStream.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { type NatsConnection, connect as natsConnect } from '@nats-io/transport-node';
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { amqpUrl, natsUrl } from '../messaging/brokers.js';
import { amqpRoute, OutboxTable, takeAll, uniqueName } from '../messaging/fixtures/relay-fixtures.js';
import { postgresUrl } from '../stores/postgres.factory.js';
import { type Finished, ROOT } from './helpers.js';

const MAIN = join(ROOT, 'dist', 'cli', 'main.js');
if (!existsSync(MAIN)) throw new Error('dist/ is missing: run `npm run build` first.');
const natsTo = natsUrl.includes('://') ? natsUrl : `nats://${natsUrl}`;

/** Runs the built `idem ...args` to the end; `onStdout` sees each chunk (and the child, to signal it). */
function idem(args: string[], onStdout?: (text: string, kill: (signal: NodeJS.Signals) => void) => void) {
  return new Promise<Finished>((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
      onStdout?.(stdout, (signal) => child.kill(signal));
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function assertOneLine(run: Finished, code: number, pattern: RegExp): void {
  assert.equal(run.code, code, `exit code; stderr: ${run.stderr}`);
  assert.match(run.stderr, /^idem: [^\n]+\n$/, 'one line');
  assert.match(run.stderr, pattern);
}

describe('idem outbox', () => {
  let connection: ChannelModel;
  let channel: ConfirmChannel;
  let nc: NatsConnection;
  const table = new OutboxTable(uniqueName('outbox_cli'));
  const exchange = uniqueName('cli_x');
  const queue = uniqueName('cli_q');
  const stream = uniqueName('CLI');
  const subject = uniqueName('cli');
  const db = ['--db', postgresUrl, '--table', table.table];

  before(async () => {
    connection = await amqp.connect(amqpUrl);
    channel = await connection.createConfirmChannel();
    await amqpRoute(channel, exchange, queue);
    nc = await natsConnect({ servers: natsUrl });
    await (await jetstreamManager(nc)).streams.add({ name: stream, subjects: [`${subject}.>`] });
  });
  after(async () => {
    await table.drop();
    await channel.deleteQueue(queue).catch(() => {});
    await channel.deleteExchange(exchange).catch(() => {});
    await connection.close();
    await (await jetstreamManager(nc)).streams.delete(stream).catch(() => {});
    await nc.close();
  });

  it('relay --once publishes what is pending to RabbitMQ with its ids, says how many, and exits 0', async () => {
    const ids = await table.enqueue([
      { topic: 'orders.created', key: 'o-1', payload: { n: 1 } },
      { topic: 'orders.paid', key: 'o-1', payload: { n: 2 } },
      { topic: 'orders.created', payload: { n: 3 } },
    ]);
    const status = await idem(['outbox', 'status', ...db]);
    assert.match(status.stdout, /3 pending, 0 published, 0 dead/);
    const run = await idem(['outbox', 'relay', ...db, '--to', amqpUrl, '--exchange', exchange, '--once']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /3 published, 0 failed \(to be retried\), 0 dead/);
    assert.doesNotMatch(run.stdout, /guest:guest/, 'the password is not printed');
    const delivered = await takeAll(channel, queue);
    assert.deepEqual(delivered.map((message) => message.properties.messageId).sort(), [...ids].sort());
    const json = await idem(['outbox', 'status', ...db, '--json']);
    assert.deepEqual(JSON.parse(json.stdout), { pending: 0, published: 3, dead: 0 });
  });

  it('relay --once publishes to JetStream with Nats-Msg-Id', async () => {
    const ids = await table.enqueue([{ topic: `${subject}.orders`, payload: 'a', headers: { 'x-n': '1' } }]);
    const run = await idem(['outbox', 'relay', ...db, '--to', natsTo, '--once']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /1 published/);
    const stored = await (await jetstreamManager(nc)).streams.getMessage(stream, { seq: 1 });
    assert.equal(stored?.header.get('Nats-Msg-Id'), ids[0]);
    assert.equal(stored?.header.get('x-n'), '1');
  });

  it('lists a message that failed --max-attempts times as dead, and revives it (exit 3 when it is not dead)', async () => {
    const topic = uniqueName('unbound');
    const [id = ''] = await table.enqueue([{ topic, payload: 'x' }]);
    const run = await idem(['outbox', 'relay', ...db, '--to', amqpUrl, '--mandatory', '--max-attempts', '1', '--once']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /0 published, 0 failed \(to be retried\), 1 dead \(idem outbox dead lists them\)/);
    const dead = await idem(['outbox', 'dead', ...db]);
    assert.match(dead.stdout, new RegExp(`${id}\\s+${topic}\\s+-\\s+1\\s+\\S+\\s+unroutable`));
    const revived = await idem(['outbox', 'revive', id, ...db]);
    assert.equal(revived.code, 0, revived.stderr);
    assertOneLine(await idem(['outbox', 'revive', id, ...db]), 3, /no dead message with id/);
    assert.match((await idem(['outbox', 'status', ...db])).stdout, /1 pending/);
    await table.outbox.relay({
      limit: 10,
      nowMs: Date.now(),
      publish: async (messages) => messages.map(() => ({ ok: true as const })),
      retryAtMs: () => undefined,
    });
  });

  it('stops on SIGTERM after the pass in flight, and exits 0', async () => {
    const run = await idem(['outbox', 'relay', ...db, '--to', amqpUrl, '--exchange', exchange], (stdout, kill) => {
      if (stdout.includes('SIGTERM or SIGINT stops it')) kill('SIGTERM');
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /SIGTERM: stopped after \d+ published/);
  });

  it('refuses a broker or database it cannot use in one line', async () => {
    assertOneLine(await idem(['outbox', 'relay', ...db, '--to', 'redis://127.0.0.1:6379', '--once']), 2, /--to/);
    assertOneLine(
      await idem(['outbox', 'relay', ...db, '--to', natsTo, '--exchange', 'x', '--once']),
      2,
      /--exchange is for RabbitMQ/,
    );
    assertOneLine(
      await idem(['outbox', 'relay', ...db, '--to', amqpUrl, '--exchange', uniqueName('missing'), '--once']),
      1,
      /the exchange \S+ does not exist/,
    );
    assertOneLine(
      await idem(['outbox', 'status', '--db', 'postgres://postgres@127.0.0.1:1/test']),
      1,
      /cannot reach postgres:\/\/postgres@127\.0\.0\.1:1\/test/,
    );
    assertOneLine(await idem(['outbox', 'status', '--db', 'redis://127.0.0.1']), 2, /not an outbox database/);
    assertOneLine(await idem(['outbox', 'status', '--db', 'sqlite:./no/such/app.db']), 1, /no database file/);
  });

  it('refuses a --limit, an id or a --poll the outbox or the relay cannot take in one line, with no stack trace', async () => {
    assertOneLine(
      await idem(['outbox', 'dead', ...db, '--limit', '5000']),
      2,
      /limit must be a whole number from 1 to 1000/,
    );
    assertOneLine(await idem(['outbox', 'revive', 'x'.repeat(300), ...db]), 2, /the id must be a string of 1 to 255/);
    // 30 days is past what a timer can wait (2^31 - 1 ms): Node would fire it at once, and the relay would spin.
    assertOneLine(await idem(['outbox', 'relay', ...db, '--to', amqpUrl, '--poll', '30d', '--once']), 2, /pollMs/);
  });
});
