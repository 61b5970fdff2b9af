/**
 * What the inbox costs a consumer: messages per second drained from a queue filled beforehand,
 * with a handler that does nothing, by a bare consumer (ack at once) and by the inbox adapter on
 * each store (claim, run, complete, then ack). RabbitMQ (prefetch = concurrency) and JetStream
 * (one durable pull consumer). Run alone: `npx tsx bench/inbox.ts [messages] [concurrency]`.
 */
import { randomBytes } from 'node:crypto';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect as connectNats, headers, nanos } from '@nats-io/transport-node';
import amqp from 'amqplib';
import { consumeAmqp, consumeJetStream, Inbox } from '../src/messaging/index.js';
import { describe, openTarget, type StoreName, Unreachable } from './store-targets.js';

const amqpUrl = process.env.IDEM_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const natsUrl = process.env.IDEM_NATS_URL ?? '127.0.0.1:4222';

export interface InboxBenchRow {
  broker: 'amqp' | 'jetstream';
  /** `bare`, or the store the inbox ran on. */
  consumer: 'bare' | StoreName;
  messagesPerSecond?: number;
  skipped?: string;
}

export interface InboxBenchOptions {
  stores: StoreName[];
  /** Messages per run. Default 5,000. */
  messages?: number;
  /** Messages handled at once. Default 16. */
  concurrency?: number;
  log?: (line: string) => void;
}

/** One drain: fills a fresh queue or stream with `messages`, consumes them all, gives messages/s. */
type Drain = (messages: number, concurrency: number, store: StoreName | undefined) => Promise<number>;

export async function benchInbox(options: InboxBenchOptions): Promise<InboxBenchRow[]> {
  const messages = options.messages ?? 5000;
  const concurrency = options.concurrency ?? 16;
  const rows: InboxBenchRow[] = [];
  const drains: [InboxBenchRow['broker'], Drain][] = [
    ['amqp', drainAmqp],
    ['jetstream', drainJetStream],
  ];
  for (const [broker, drain] of drains) {
    for (const store of [undefined, ...options.stores]) {
      const consumer = store ?? 'bare';
      options.log?.(`  inbox on ${broker}, ${consumer}`);
      try {
        rows.push({ broker, consumer, messagesPerSecond: await drain(messages, concurrency, store) });
      } catch (error) {
        if (!(error instanceof Unreachable) && store === undefined) throw error;
        rows.push({ broker, consumer, skipped: describe(error) });
      }
    }
  }
  return rows;
}

/** Runs `consume` with an inbox on `store` (or none), timing it; closes what it opened. */
async function withInbox(
  store: StoreName | undefined,
  consume: (inbox: Inbox | undefined) => Promise<void>,
): Promise<number> {
  const target = store === undefined ? undefined : await openTarget(store);
  try {
    const inbox = target && new Inbox({ store: target.store, consumer: `bench-${randomBytes(4).toString('hex')}` });
    const started = performance.now();
    await consume(inbox);
    return performance.now() - started;
  } finally {
    await target?.close();
  }
}

const drainAmqp: Drain = async (messages, concurrency, store) => {
  const connection = await amqp.connect(amqpUrl);
  const channel = await connection.createChannel();
  const queue = `idem.bench.inbox.${randomBytes(4).toString('hex')}`;
  try {
    await channel.assertQueue(queue, { durable: false });
    for (let i = 0; i < messages; i++) channel.sendToQueue(queue, Buffer.from(`{"n":${i}}`), { messageId: `m-${i}` });
    await channel.checkQueue(queue);
    await channel.prefetch(concurrency);
    const elapsedMs = await withInbox(store, async (inbox) => {
      let acked = 0;
      let done: () => void = () => {};
      const finished = new Promise<void>((resolve) => (done = resolve));
      const counting = {
        ack: (message: amqp.ConsumeMessage) => {
          channel.ack(message);
          if (++acked === messages) done();
        },
        nack: (message: amqp.ConsumeMessage, allUpTo?: boolean, requeue?: boolean) =>
          channel.nack(message, allUpTo, requeue),
      };
      if (inbox === undefined) {
        await channel.consume(queue, (message) => message && counting.ack(message), { noAck: false });
      } else {
        await consumeAmqp(
          { ...counting, consume: channel.consume.bind(channel), cancel: channel.cancel.bind(channel) },
          queue,
          {
            inbox,
            handler: () => undefined,
          },
        );
      }
      await finished;
    });
    return (messages / elapsedMs) * 1000;
  } finally {
    await channel.deleteQueue(queue);
    await connection.close();
  }
};

const drainJetStream: Drain = async (messages, concurrency, store) => {
  const nc = await connectNats({ servers: natsUrl });
  const jsm = await jetstreamManager(nc);
  const name = `IDEM_BENCH_INBOX_${randomBytes(4).toString('hex').toUpperCase()}`;
  try {
    await jsm.streams.add({ name, subjects: [`idem.bench.${name}`] });
    await jsm.consumers.add(name, { durable_name: 'bench', ack_policy: AckPolicy.Explicit, ack_wait: nanos(60_000) });
    const js = jetstream(nc);
    const published: Promise<unknown>[] = [];
    for (let i = 0; i < messages; i++) {
      const h = headers();
      h.set('Nats-Msg-Id', `m-${i}`);
      published.push(js.publish(`idem.bench.${name}`, `{"n":${i}}`, { headers: h }));
    }
    await Promise.all(published);
    const consumer = await js.consumers.get(name, 'bench');
    const elapsedMs = await withInbox(store, async (inbox) => {
      let acked = 0;
      if (inbox === undefined) {
        const stream = await consumer.consume({ max_messages: concurrency * 4 });
        for await (const message of stream) {
          message.ack();
          if (++acked === messages) break;
        }
        await stream.close();
        return;
      }
      let done: () => void = () => {};
      const finished = new Promise<void>((resolve) => (done = resolve));
      const loop = await consumeJetStream(consumer, {
        inbox,
        concurrency,
        consume: { max_messages: concurrency * 4 },
        handler: () => {
          if (++acked === messages) setImmediate(done);
        },
      });
      await finished;
      await loop.stop();
    });
    return (messages / elapsedMs) * 1000;
  } finally {
    await jsm.streams.delete(name).catch(() => false);
    await nc.close();
  }
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const messages = Number(process.argv[2] ?? 5000);
  const concurrency = Number(process.argv[3] ?? 16);
  const rows = await benchInbox({
    stores: ['memory', 'sqlite', 'redis', 'postgres'],
    messages,
    concurrency,
    log: (line) => console.error(line),
  });
  const bare = new Map(rows.filter((row) => row.consumer === 'bare').map((row) => [row.broker, row.messagesPerSecond]));
  for (const row of rows) {
    const floor = bare.get(row.broker);
    const ratio = row.messagesPerSecond && floor ? (floor / row.messagesPerSecond).toFixed(2) : '-';
    console.log(
      `${row.broker.padEnd(10)} ${row.consumer.padEnd(9)} ${row.skipped ?? `${Math.round(row.messagesPerSecond ?? 0)} msg/s`.padStart(12)}  x${ratio}`,
    );
  }
}
