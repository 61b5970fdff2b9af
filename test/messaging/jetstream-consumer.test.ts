import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import { connect, headers, type NatsConnection, nanos } from '@nats-io/transport-node';
import { isIdempotencyError } from '../../src/core/errors.js';
import type { AdminStore } from '../../src/core/store.js';
import {
  consumeJetStream,
  Inbox,
  type JetStreamConsumerLike,
  type JetStreamSettlement,
  jetStreamHandler,
} from '../../src/messaging/index.js';
import { createStore, dropStore } from '../stores/sqlite.factory.js';
import { natsUrl } from './brokers.js';

const run = randomBytes(4).toString('hex');
const namespace = `inbox_js_${run}`;
let store: AdminStore;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
const streams: string[] = [];

before(async () => {
  store = await createStore(namespace);
  nc = await connect({ servers: natsUrl });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});
after(async () => {
  for (const stream of streams) await jsm.streams.delete(stream);
  await nc.close();
  await store.close();
  await dropStore(namespace);
});

/** A fresh stream on `<name>.>` with one durable pull consumer, for one test. */
async function freshStream(
  name: string,
  consumerConfig: Partial<ConsumerConfig> = {},
  duplicateWindowMs = 120_000,
): Promise<{ stream: string; subject: string; consumer: Consumer }> {
  const stream = `IDEM_${name.toUpperCase().replaceAll('-', '_')}_${run}`;
  const subject = `idem.${name}.${run}`;
  await jsm.streams.add({ name: stream, subjects: [subject], duplicate_window: nanos(duplicateWindowMs) });
  streams.push(stream);
  await jsm.consumers.add(stream, {
    durable_name: 'worker',
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(2000),
    ...consumerConfig,
  });
  return { stream, subject, consumer: await js.consumers.get(stream, 'worker') };
}

async function publish(subject: string, body: string, msgId?: string) {
  const h = headers();
  if (msgId !== undefined) h.set('Nats-Msg-Id', msgId);
  return await js.publish(subject, body, { headers: h });
}

/** Resolves when `check` holds, looking every 20 ms, or rejects after 15 s saying what was awaited. */
async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** `consumer` whose messages record how they were settled in `log`, and drop their ack when `dropAck`. */
function recording(consumer: Consumer, log: JetStreamSettlement[], dropAck = false): JetStreamConsumerLike {
  const wrap = (message: JsMsg): JsMsg =>
    Object.assign(Object.create(message) as JsMsg, {
      ack: () => {
        log.push('ack');
        if (!dropAck) message.ack();
      },
      nak: (delayMs?: number) => {
        log.push('nak');
        message.nak(delayMs);
      },
      term: (reason?: string) => {
        log.push('term');
        message.term(reason);
      },
    });
  return {
    info: (cached) => consumer.info(cached),
    consume: async (options) => {
      const messages = await consumer.consume(options);
      return {
        close: () => messages.close(),
        closed: () => messages.closed(),
        stop: (error?: Error) => messages.stop(error),
        status: () => messages.status(),
        getProcessed: () => messages.getProcessed(),
        getPending: () => messages.getPending(),
        getReceived: () => messages.getReceived(),
        async *[Symbol.asyncIterator]() {
          for await (const message of messages) yield wrap(message);
        },
      };
    },
  };
}

/**
 * Resolves once every message of the consumer is acknowledged or terminated (the server applies
 * acks apart from the requests that read its state, so it may take a moment to show), else rejects.
 */
async function allSettled(consumer: Consumer): Promise<void> {
  await until('every message settled on the server', async () => {
    const info = await consumer.info();
    return info.num_pending + info.num_ack_pending === 0;
  });
}

describe('the inbox on NATS JetStream', () => {
  it('stores a message published twice with one Nats-Msg-Id once, within the duplicate window', async () => {
    const { stream, subject } = await freshStream('dedupe');
    const first = await publish(subject, 'charge 10', 'm-1');
    const second = await publish(subject, 'charge 10', 'm-1');
    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
    assert.equal(second.seq, first.seq);
    assert.equal((await jsm.streams.info(stream)).state.messages, 1);
  });

  it('acks a redelivered message whose processing completed without running the handler', async () => {
    const { subject, consumer } = await freshStream('redelivered');
    const inbox = new Inbox({ store, consumer: `redelivered-${run}` });
    const runs: number[] = [];
    const handler = (message: JsMsg) => runs.push(message.info.deliveryCount);
    // The first loop processes the message, but its ack is lost: the server redelivers it after the ack wait.
    const log: JetStreamSettlement[] = [];
    const first = await consumeJetStream(recording(consumer, log, true), { inbox, handler });
    await publish(subject, 'charge 10', 'm-2');
    await until('the first delivery', () => log.length === 1);
    await first.stop();
    const second = await consumeJetStream(recording(consumer, log), { inbox, handler });
    await until('the redelivery', () => log.length === 2);
    await second.stop();
    assert.deepEqual(runs, [1], 'the handler ran once, on the first delivery');
    assert.deepEqual(log, ['ack', 'ack']);
    await allSettled(consumer);
  });

  it('naks a message whose handler failed, and processes its redelivery once', async () => {
    const { subject, consumer } = await freshStream('failing');
    const inbox = new Inbox({ store, consumer: `failing-${run}` });
    const log: JetStreamSettlement[] = [];
    const deliveries: number[] = [];
    const effects: string[] = [];
    const errors: unknown[] = [];
    const loop = await consumeJetStream(recording(consumer, log), {
      inbox,
      retryDelayMs: (deliveryCount) => 50 * deliveryCount,
      onError: (error) => errors.push(error),
      handler: (message) => {
        deliveries.push(message.info.deliveryCount);
        if (deliveries.length === 1) throw new Error('downstream down');
        effects.push(message.string());
      },
    });
    await publish(subject, 'charge 10', 'm-3');
    await until('the retry', () => log.length === 2);
    await loop.stop();
    assert.deepEqual(log, ['nak', 'ack']);
    assert.deepEqual(deliveries, [1, 2]);
    assert.deepEqual(effects, ['charge 10']);
    assert.match(String(errors[0]), /downstream down/);
    await allSettled(consumer);
  });

  it("terminates a failing message on the consumer's last delivery", async () => {
    const { subject, consumer } = await freshStream('max-deliver', { max_deliver: 2 });
    const inbox = new Inbox({ store, consumer: `max-deliver-${run}` });
    const log: JetStreamSettlement[] = [];
    const loop = await consumeJetStream(recording(consumer, log), {
      inbox,
      retryDelayMs: 20,
      onError: () => {},
      handler: () => {
        throw new Error('poison');
      },
    });
    await publish(subject, 'poison pill', 'm-4');
    await until('the term', () => log.includes('term'));
    await loop.stop();
    assert.deepEqual(log, ['nak', 'term']);
    await allSettled(consumer);
  });

  it('takes <stream>:<sequence> as the id of a message without Nats-Msg-Id, the same on its redelivery', async () => {
    const { stream, subject, consumer } = await freshStream('no-id');
    const inbox = new Inbox({ store, consumer: `no-id-${run}` });
    const ids: string[] = [];
    const log: JetStreamSettlement[] = [];
    const handler = (_message: JsMsg, context: { id: string }) => ids.push(context.id);
    const first = await consumeJetStream(recording(consumer, log, true), { inbox, handler });
    const ack = await publish(subject, 'anonymous');
    await until('the first delivery', () => log.length === 1);
    await first.stop();
    const second = await consumeJetStream(recording(consumer, log), { inbox, handler });
    await until('the redelivery', () => log.length === 2);
    await second.stop();
    assert.deepEqual(ids, [`${stream}:${ack.seq}`]);
    assert.deepEqual(log, ['ack', 'ack']);
  });

  it('terminates a reused id with another body and reports it, the handler not run', async () => {
    // A short duplicate window: the server keeps the second publish, as it would after two minutes.
    const { subject, consumer } = await freshStream('reused', {}, 100);
    const inbox = new Inbox({ store, consumer: `reused-${run}` });
    const log: JetStreamSettlement[] = [];
    const errors: unknown[] = [];
    const handled: string[] = [];
    const loop = await consumeJetStream(recording(consumer, log), {
      inbox,
      onError: (error) => errors.push(error),
      handler: (message) => handled.push(message.string()),
    });
    await publish(subject, 'charge 10', 'm-5');
    await until('the first settled', () => log.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const reused = await publish(subject, 'charge 99', 'm-5');
    assert.equal(reused.duplicate, false);
    await until('the second settled', () => log.length === 2);
    await loop.stop();
    assert.deepEqual(log, ['ack', 'term']);
    assert.deepEqual(handled, ['charge 10']);
    assert.ok(isIdempotencyError(errors[0], 'FINGERPRINT_MISMATCH'), String(errors[0]));
    await allSettled(consumer);
  });

  it('naks a message another delivery is processing with a delay, then acks it as a duplicate', async () => {
    const { subject, consumer } = await freshStream('in-progress');
    const inbox = new Inbox({ store, consumer: `in-progress-${run}` });
    const log: JetStreamSettlement[] = [];
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    let runs = 0;
    const loop = await consumeJetStream(recording(consumer, log), {
      inbox,
      concurrency: 2,
      inProgressDelayMs: 50,
      idOf: (message) => message.string(),
      handler: async () => {
        runs++;
        await released;
      },
    });
    // Two stored messages that the inbox sees as one (no Nats-Msg-Id: idOf reads the body).
    await publish(subject, 'order A-7');
    await publish(subject, 'order A-7');
    await until('the copy nak-ed', () => log.includes('nak'));
    release();
    await until('both acked', () => log.filter((s) => s === 'ack').length === 2);
    await loop.stop();
    assert.equal(runs, 1);
    await allSettled(consumer);
  });

  it('keeps a long handler from being redelivered by telling the server it is working', async () => {
    const { subject, consumer } = await freshStream('working', { ack_wait: nanos(1000) });
    const inbox = new Inbox({ store, consumer: `working-${run}` });
    const log: JetStreamSettlement[] = [];
    const deliveries: number[] = [];
    const loop = await consumeJetStream(recording(consumer, log), {
      inbox,
      concurrency: 2,
      handler: async (message) => {
        deliveries.push(message.info.deliveryCount);
        await new Promise((resolve) => setTimeout(resolve, 2500));
      },
    });
    await publish(subject, 'slow', 'm-6');
    await until('the ack', () => log.length >= 1);
    await loop.stop();
    assert.deepEqual(deliveries, [1]);
    assert.deepEqual(log, ['ack'], 'no redelivery came while it ran');
  });

  it('lets two loops compete on one consumer and processes each message once', async () => {
    const { subject, consumer } = await freshStream('competing');
    const inbox = new Inbox({ store, consumer: `competing-${run}` });
    const handledBy = new Map<string, string[]>();
    const log: JetStreamSettlement[] = [];
    const ids = Array.from({ length: 100 }, (_, i) => `order-${i}`);
    const loops = await Promise.all(
      ['a', 'b'].map((name) =>
        consumeJetStream(recording(consumer, log), {
          inbox,
          concurrency: 5,
          inProgressDelayMs: 50,
          consume: { max_messages: 10 },
          // No Nats-Msg-Id: the server keeps both copies, and the inbox tells them apart by body.
          idOf: (message) => message.string(),
          handler: async (message) => {
            await new Promise((resolve) => setTimeout(resolve, 2));
            const id = message.string();
            handledBy.set(id, [...(handledBy.get(id) ?? []), name]);
          },
        }),
      ),
    );
    for (const id of ids) await publish(subject, id);
    for (const id of ids) await publish(subject, id);
    await until('every copy acked', () => log.filter((s) => s === 'ack').length === ids.length * 2);
    for (const loop of loops) await loop.stop();
    assert.deepEqual([...handledBy.keys()].sort(), [...ids].sort());
    for (const [id, by] of handledBy) assert.equal(by.length, 1, `${id} handled by ${by.join(', ')}`);
    await allSettled(consumer);
  });

  it('settles each message of a plain consume loop with jetStreamHandler', async () => {
    const { subject, consumer } = await freshStream('plain');
    const inbox = new Inbox({ store, consumer: `plain-${run}` });
    const onMessage = jetStreamHandler({ inbox, handler: (message) => message.string().toUpperCase() });
    await publish(subject, 'one', 'p-1');
    await publish(subject, 'one', 'p-1b');
    const settled: JetStreamSettlement[] = [];
    const messages = await consumer.consume();
    for await (const message of messages) {
      settled.push(await onMessage(message));
      if (settled.length === 2) break;
    }
    await messages.close();
    assert.deepEqual(settled, ['ack', 'ack']);
    await allSettled(consumer);
  });
});
