/**
 * The outbox relay's throughput: messages per second from a PostgreSQL outbox to RabbitMQ (confirm
 * channel, persistent messages) and to NATS JetStream (file storage, a PubAck per message), at
 * batch sizes 100 and 500, one relay. Each run first fills a fresh outbox table with `messages`
 * committed messages (not timed), then times `relay.drain()` until the outbox is empty. The floor
 * is the publisher alone on the same number of messages in the same batches, with no database: the
 * broker's own rate with this client, so `x floor` is what the outbox costs per message. Floor and
 * relay take turns, three runs each (one with --quick); the table shows the medians.
 *
 * Run alone: `npx tsx bench/relay.ts [--quick]`. Owns the tables `idem_bench_relay_*`, the
 * RabbitMQ exchange and queue `idem_bench_relay` and the stream `IDEM_BENCH_RELAY`.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { headers, type NatsConnection, connect as natsConnect } from '@nats-io/transport-node';
import amqp, { type ConfirmChannel } from 'amqplib';
import pg from 'pg';
import { amqpPublisher } from '../src/messaging/amqp/amqp-publisher.js';
import { jetstreamPublisher } from '../src/messaging/jetstream/jetstream-publisher.js';
import type { OutboxPublisher, PendingMessage } from '../src/messaging/outbox/outbox.js';
import { postgresOutbox } from '../src/messaging/outbox/postgres-outbox.js';
import { OutboxRelay } from '../src/messaging/outbox/relay.js';
import { type Align, table } from './report.js';

const POSTGRES_URL = process.env.IDEM_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const AMQP_URL = process.env.IDEM_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const NATS_URL = process.env.IDEM_NATS_URL ?? '127.0.0.1:4222';
const NAME = 'idem_bench_relay';
const STREAM = 'IDEM_BENCH_RELAY';

export interface RelayRow {
  broker: 'rabbitmq' | 'jetstream';
  batch: number;
  messages: number;
  /** Relay messages per second, PostgreSQL outbox to the broker. */
  perSecond: number;
  /** The publisher alone, no database, same batches. */
  floorPerSecond: number;
}

export interface RelayReport {
  rows: RelayRow[];
}

export interface RelayBenchOptions {
  quick: boolean;
  log: (line: string) => void;
  /** Batch sizes to measure. Default 100 and 500. */
  batches?: number[];
}

/** Measures relay throughput on each broker at each batch size. */
export async function benchRelay({ quick, log, batches = [100, 500] }: RelayBenchOptions): Promise<RelayReport> {
  const messages = quick ? 2000 : 10_000;
  const runs = quick ? 1 : 3;
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 5 });
  const connection = await amqp.connect(AMQP_URL);
  const nc = await natsConnect({ servers: NATS_URL });
  const rows: RelayRow[] = [];
  try {
    const channel = await connection.createConfirmChannel();
    const brokers = {
      rabbitmq: await rabbitmq(channel),
      jetstream: await nats(nc),
    } as const;
    for (const broker of ['rabbitmq', 'jetstream'] as const) {
      for (const batch of batches) {
        log(`  relay to ${broker}, batch ${batch}, ${messages} messages`);
        const { publisher, topic, reset } = brokers[broker];
        const floors: number[] = [];
        const relays: number[] = [];
        for (let run = 0; run < runs; run++) {
          await reset();
          floors.push(await floor(publisher, topic, messages, batch));
          await reset();
          relays.push(await relayRate(pool, publisher, topic, messages, batch));
        }
        rows.push({ broker, batch, messages, perSecond: median(relays), floorPerSecond: median(floors) });
      }
    }
    await channel.deleteQueue(NAME).catch(() => {});
    await channel.deleteExchange(NAME).catch(() => {});
    await (await jetstreamManager(nc)).streams.delete(STREAM).catch(() => {});
  } finally {
    await connection.close();
    await nc.close();
    await pool.end();
  }
  return { rows };
}

interface Broker {
  publisher: OutboxPublisher;
  topic: string;
  /** Empties the queue or stream between runs, so each starts alike. */
  reset(): Promise<void>;
}

async function rabbitmq(channel: ConfirmChannel): Promise<Broker> {
  await channel.assertExchange(NAME, 'topic', { durable: true });
  await channel.assertQueue(NAME, { durable: true });
  await channel.bindQueue(NAME, NAME, '#');
  return {
    publisher: amqpPublisher({ channel, exchange: NAME }),
    topic: 'bench.orders',
    reset: async () => void (await channel.purgeQueue(NAME)),
  };
}

async function nats(nc: NatsConnection): Promise<Broker> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(STREAM).catch(() => {});
  await jsm.streams.add({ name: STREAM, subjects: [`${STREAM.toLowerCase()}.>`] });
  return {
    publisher: jetstreamPublisher({ js: jetstream(nc), headers }),
    topic: `${STREAM.toLowerCase()}.orders`,
    reset: async () => void (await jsm.streams.purge(STREAM)),
  };
}

/** The publisher alone: `messages` messages in batches of `batch`, one batch after another. */
async function floor(publisher: OutboxPublisher, topic: string, messages: number, batch: number): Promise<number> {
  const run = `floor-${Date.now()}`;
  const started = performance.now();
  for (let start = 0; start < messages; start += batch) {
    const slice: PendingMessage[] = [];
    for (let index = start; index < Math.min(messages, start + batch); index++) {
      slice.push({
        id: `${run}-${index}`,
        seq: index,
        topic,
        key: null,
        payload: Buffer.from(JSON.stringify({ orderId: index, total: 42 })),
        headers: {},
        attempts: 0,
        createdAtMs: Date.now(),
      });
    }
    const results = await publisher.publish(slice);
    if (results.some((result) => !result.ok)) throw new Error(`floor: a publish failed: ${JSON.stringify(results[0])}`);
  }
  return messages / ((performance.now() - started) / 1000);
}

/** A fresh outbox table with `messages` committed messages, drained by one relay; the drain is timed. */
async function relayRate(
  pool: pg.Pool,
  publisher: OutboxPublisher,
  topic: string,
  messages: number,
  batch: number,
): Promise<number> {
  const tableName = `${NAME}_${batch}`;
  await pool.query(`DROP TABLE IF EXISTS "${tableName}"`);
  const outbox = postgresOutbox(pool, { table: tableName });
  try {
    await outbox.ensureSchema();
    // Filled on four connections at once, one transaction each: only the drain is timed.
    await Promise.all(
      [0, 1, 2, 3].map(async (lane) => {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          for (let index = lane; index < messages; index += 4) {
            await outbox.enqueue(client, { topic, payload: { orderId: index, total: 42 } });
          }
          await client.query('COMMIT');
        } finally {
          client.release();
        }
      }),
    );
    const relay = new OutboxRelay({ outbox, publisher, batchSize: batch, cleanup: false });
    const started = performance.now();
    const total = await relay.drain();
    const seconds = (performance.now() - started) / 1000;
    if (total.published !== messages) throw new Error(`relay: published ${total.published} of ${messages}`);
    return messages / seconds;
  } finally {
    await outbox.close();
    await pool.query(`DROP TABLE IF EXISTS "${tableName}"`);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** The report as a table. */
export function relaySection(report: RelayReport): string {
  const int = (value: number) => Math.round(value).toLocaleString('en-US');
  const right: Align[] = ['left', 'right', 'right', 'right', 'right', 'right'];
  return [
    'OUTBOX RELAY: PostgreSQL outbox to the broker, one relay, messages per second (drain of a full outbox, medians)',
    'floor = the publisher alone, same batches, no database; x floor = floor rate / relay rate.',
    '',
    table(
      ['broker', 'batch', 'messages', 'relay msg/s', 'floor msg/s', 'x floor'],
      report.rows.map((row) => [
        row.broker,
        String(row.batch),
        String(row.messages),
        int(row.perSecond),
        int(row.floorPerSecond),
        `${(row.floorPerSecond / row.perSecond).toFixed(2)}x`,
      ]),
      right,
    ),
  ].join('\n');
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/^.*\/bench\//, '/bench/'))) {
  const report = await benchRelay({ quick: process.argv.includes('--quick'), log: (line) => console.error(line) });
  console.log(relaySection(report));
}
