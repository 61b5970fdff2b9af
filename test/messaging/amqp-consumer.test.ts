import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { isIdempotencyError } from '../../src/core/errors.js';
import type { AdminStore } from '../../src/core/store.js';
import {
  type AmqpConsumingChannelLike,
  type AmqpSettlement,
  amqpHandler,
  consumeAmqp,
  Inbox,
} from '../../src/messaging/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { createStore, dropStore } from '../stores/redis.factory.js';
import { amqpUrl } from './brokers.js';

const run = randomBytes(4).toString('hex');
const namespace = `inbox_amqp_${run}`;
let store: AdminStore;
let connection: ChannelModel;
let channel: Channel;
const queues: string[] = [];

before(async () => {
  store = await createStore(namespace);
  connection = await amqp.connect(amqpUrl);
  channel = await connection.createChannel();
});
after(async () => {
  for (const queue of queues) await channel.deleteQueue(queue);
  await connection.close();
  await store.close();
  await dropStore(namespace);
});

/** A fresh queue (and its dead-letter queue) for one test. */
async function freshQueue(name: string): Promise<{ queue: string; deadLetters: string }> {
  const queue = `idem.test.${name}.${run}`;
  const deadLetters = `${queue}.dlq`;
  await channel.assertQueue(deadLetters, { durable: false });
  await channel.assertQueue(queue, {
    durable: false,
    arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': deadLetters },
  });
  queues.push(queue, deadLetters);
  return { queue, deadLetters };
}

function publish(queue: string, body: string, messageId?: string): void {
  channel.sendToQueue(queue, Buffer.from(body), messageId === undefined ? {} : { messageId });
}

/** Resolves when `check` holds, looking every 20 ms, or rejects after 10 s saying what was awaited. */
async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Messages ready in `queue` (none unacknowledged: call it once the consumers are stopped). */
async function ready(queue: string): Promise<number> {
  return (await channel.checkQueue(queue)).messageCount;
}

/** A channel on its own connection, so closing it leaves the others' deliveries alone. */
async function ownChannel(prefetch: number): Promise<{ channel: Channel; close(): Promise<void> }> {
  const own = await amqp.connect(amqpUrl);
  const ch = await own.createChannel();
  await ch.prefetch(prefetch);
  return { channel: ch, close: () => own.close() };
}

/** `channel` with its settlements recorded in `log`. */
function recording(ch: Channel, log: AmqpSettlement[]): AmqpConsumingChannelLike {
  return {
    ack: (message) => {
      log.push('ack');
      ch.ack(message);
    },
    nack: (message, allUpTo, requeue) => {
      log.push(requeue ? 'requeue' : 'reject');
      ch.nack(message, allUpTo, requeue);
    },
    consume: (queue, onMessage, options) => ch.consume(queue, onMessage, options),
    cancel: (tag) => ch.cancel(tag),
  };
}

describe('the inbox on RabbitMQ', () => {
  it('acknowledges a redelivered message whose processing completed without running the handler', async () => {
    const { queue } = await freshQueue('redelivered');
    const inbox = new Inbox({ store, consumer: `redelivered-${run}` });
    const runs: boolean[] = [];
    const handler = (message: ConsumeMessage) => runs.push(message.fields.redelivered);
    // The first consumer processes the message and dies before its ack reaches the broker.
    const first = await ownChannel(1);
    const lostAck: AmqpConsumingChannelLike = { ...recording(first.channel, []), ack: () => {} };
    const settled: Promise<unknown>[] = [];
    const onFirst = amqpHandler({ channel: lostAck, inbox, handler });
    await first.channel.consume(queue, (message) => settled.push(onFirst(message)), { noAck: false });
    publish(queue, 'charge 10', 'm-1');
    await until('the first delivery', () => settled.length === 1);
    await Promise.all(settled);
    await first.close();

    const second = await ownChannel(1);
    const log: AmqpSettlement[] = [];
    const consumer = await consumeAmqp(recording(second.channel, log), queue, { inbox, handler });
    await until('the redelivery', () => log.length === 1);
    await consumer.stop();
    await second.close();
    assert.deepEqual(runs, [false], 'the handler ran once, on the first delivery');
    assert.deepEqual(log, ['ack'], 'the redelivery was acknowledged');
    assert.equal(await ready(queue), 0);
  });

  it('redelivers a message whose handler failed, and processes it once', async () => {
    const { queue } = await freshQueue('failing');
    const inbox = new Inbox({ store, consumer: `failing-${run}` });
    const log: AmqpSettlement[] = [];
    const errors: unknown[] = [];
    const attempts: number[] = [];
    const effects: string[] = [];
    const own = await ownChannel(1);
    const consumer = await consumeAmqp(recording(own.channel, log), queue, {
      inbox,
      retryDelayMs: 50,
      onError: (error) => errors.push(error),
      handler: (message) => {
        attempts.push(attempts.length + 1);
        if (attempts.length === 1) throw new Error('downstream down');
        effects.push(message.content.toString());
      },
    });
    publish(queue, 'charge 10', 'm-2');
    await until('the retry', () => log.length === 2);
    await consumer.stop();
    await own.close();
    assert.deepEqual(log, ['requeue', 'ack']);
    assert.deepEqual(attempts, [1, 2]);
    assert.deepEqual(effects, ['charge 10']);
    assert.match(String(errors[0]), /downstream down/);
    assert.equal(await ready(queue), 0);
  });

  it('dead-letters a message whose handler failed when onFailure is dead-letter', async () => {
    const { queue, deadLetters } = await freshQueue('dead-letter');
    const inbox = new Inbox({ store, consumer: `dead-letter-${run}` });
    const log: AmqpSettlement[] = [];
    const own = await ownChannel(1);
    const consumer = await consumeAmqp(recording(own.channel, log), queue, {
      inbox,
      onFailure: 'dead-letter',
      onError: () => {},
      handler: () => {
        throw new Error('poison');
      },
    });
    publish(queue, 'poison pill', 'm-3');
    await until('the dead letter', async () => (await ready(deadLetters)) === 1);
    await consumer.stop();
    await own.close();
    assert.deepEqual(log, ['reject']);
    // Its key was released: replayed from the dead-letter queue, it runs again.
    const replayed = await inbox.consume({ id: 'm-3', payload: Buffer.from('poison pill') }, () => 'ran');
    assert.deepEqual(replayed, { kind: 'processed', value: 'ran' });
  });

  it('rejects a message without an id to the dead-letter queue and reports it, and the consumer goes on', async () => {
    const { queue, deadLetters } = await freshQueue('no-id');
    const inbox = new Inbox({ store, consumer: `no-id-${run}` });
    const log: AmqpSettlement[] = [];
    const errors: unknown[] = [];
    const handled: string[] = [];
    const own = await ownChannel(1);
    const consumer = await consumeAmqp(recording(own.channel, log), queue, {
      inbox,
      onError: (error) => errors.push(error),
      handler: (message) => handled.push(message.content.toString()),
    });
    publish(queue, 'anonymous');
    publish(queue, 'named', 'm-4');
    await until('both settled', () => log.length === 2);
    await consumer.stop();
    await own.close();
    assert.deepEqual(log, ['reject', 'ack']);
    assert.deepEqual(handled, ['named']);
    assert.equal(errors.length, 1);
    assert.ok(isIdempotencyError(errors[0], 'KEY_MISSING'), String(errors[0]));
    assert.match(String((errors[0] as Error).message), /^\[idem\] \[amqp\] a message without a usable id/);
    assert.equal(await ready(deadLetters), 1);
  });

  it('takes the id from idOf when the message has no messageId', async () => {
    const { queue } = await freshQueue('id-of');
    const inbox = new Inbox({ store, consumer: `id-of-${run}` });
    const handled: string[] = [];
    const log: AmqpSettlement[] = [];
    const own = await ownChannel(1);
    const consumer = await consumeAmqp(recording(own.channel, log), queue, {
      inbox,
      idOf: (message) => (JSON.parse(message.content.toString()) as { order: string }).order,
      handler: (message) => handled.push(message.content.toString()),
    });
    for (let i = 0; i < 3; i++) publish(queue, JSON.stringify({ order: 'A-7' }));
    await until('three settled', () => log.length === 3);
    await consumer.stop();
    await own.close();
    assert.deepEqual(log, ['ack', 'ack', 'ack']);
    assert.equal(handled.length, 1);
  });

  it('refuses a reused id with another body: rejected, reported, the handler not run', async () => {
    const { queue, deadLetters } = await freshQueue('reused');
    const inbox = new Inbox({ store, consumer: `reused-${run}` });
    const log: AmqpSettlement[] = [];
    const errors: unknown[] = [];
    const handled: string[] = [];
    const own = await ownChannel(1);
    const consumer = await consumeAmqp(recording(own.channel, log), queue, {
      inbox,
      onError: (error) => errors.push(error),
      handler: (message) => handled.push(message.content.toString()),
    });
    publish(queue, 'charge 10', 'm-5');
    publish(queue, 'charge 99', 'm-5');
    await until('both settled', () => log.length === 2);
    await consumer.stop();
    await own.close();
    assert.deepEqual(log, ['ack', 'reject']);
    assert.deepEqual(handled, ['charge 10']);
    assert.ok(isIdempotencyError(errors[0], 'FINGERPRINT_MISMATCH'), String(errors[0]));
    assert.equal(await ready(deadLetters), 1);
  });

  it('holds a message another delivery is processing, requeues it, then acknowledges it as a duplicate', async () => {
    const { queue } = await freshQueue('in-progress');
    const inbox = new Inbox({ store, consumer: `in-progress-${run}` });
    const log: AmqpSettlement[] = [];
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    let runs = 0;
    const own = await ownChannel(2);
    const consumer = await consumeAmqp(recording(own.channel, log), queue, {
      inbox,
      inProgressDelayMs: 20,
      handler: async () => {
        runs++;
        await released;
      },
    });
    publish(queue, 'charge 10', 'm-6');
    publish(queue, 'charge 10', 'm-6');
    await until('the copy requeued', () => log.includes('requeue'));
    release();
    await until('both acknowledged', () => log.filter((s) => s === 'ack').length === 2);
    await consumer.stop();
    await own.close();
    assert.equal(runs, 1);
    assert.equal(await ready(queue), 0);
  });

  it('requeues a message when the store cannot be reached, without running the handler, and reports it', async () => {
    const { queue } = await freshQueue('store-down');
    const down = new MemoryStore();
    await down.close();
    const inbox = new Inbox({ store: down, consumer: `store-down-${run}` });
    const log: AmqpSettlement[] = [];
    const errors: unknown[] = [];
    let runs = 0;
    const own = await ownChannel(1);
    const consumer = await consumeAmqp(recording(own.channel, log), queue, {
      inbox,
      retryDelayMs: 20,
      onError: (error) => errors.push(error),
      handler: () => runs++,
    });
    publish(queue, 'charge 10', 'm-7');
    await until('two requeues', () => log.length >= 2);
    await consumer.stop();
    await own.close();
    assert.equal(runs, 0);
    assert.ok(log.every((settlement) => settlement === 'requeue'));
    assert.ok(isIdempotencyError(errors[0]), String(errors[0]));
    assert.equal(await ready(queue), 1, 'the message is back in the queue');
  });

  it('lets two consumers compete on one queue and processes each message once', async () => {
    const { queue } = await freshQueue('competing');
    const inbox = new Inbox({ store, consumer: `competing-${run}` });
    const handledBy = new Map<string, string[]>();
    const settled: AmqpSettlement[] = [];
    const ids = Array.from({ length: 100 }, (_, i) => `order-${i}`);
    const consumers = await Promise.all(
      ['a', 'b'].map(async (name) => {
        const own = await ownChannel(10);
        const consumer = await consumeAmqp(recording(own.channel, settled), queue, {
          inbox,
          inProgressDelayMs: 20,
          handler: async (message) => {
            await new Promise((resolve) => setTimeout(resolve, 2));
            const id = String(message.properties.messageId);
            handledBy.set(id, [...(handledBy.get(id) ?? []), name]);
          },
        });
        return { name, own, consumer };
      }),
    );
    // Every message published twice, as a producer that retried its publish would.
    for (const id of ids) publish(queue, `body of ${id}`, id);
    for (const id of ids) publish(queue, `body of ${id}`, id);
    await until('every copy acknowledged', () => settled.filter((s) => s === 'ack').length === ids.length * 2);
    for (const { own, consumer } of consumers) {
      await consumer.stop();
      await own.close();
    }
    assert.deepEqual([...handledBy.keys()].sort(), [...ids].sort());
    for (const [id, by] of handledBy) assert.equal(by.length, 1, `${id} handled by ${by.join(', ')}`);
    const workers = new Set([...handledBy.values()].flat());
    assert.deepEqual([...workers].sort(), ['a', 'b'], 'both consumers took messages');
    assert.equal(await ready(queue), 0);
  });
});
