// Edge cases of consumers built on the inbox: ways one could crash, or leave a processed message
// unsettled and redelivered for ever.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import amqp from 'amqplib';
import type { AdminStore } from '../../src/core/store.js';
import {
  type AmqpSettlement,
  amqpHandler,
  consumeJetStream,
  Inbox,
  type JetStreamConsumerLike,
  jetStreamHandler,
} from '../../src/messaging/index.js';
import { createStore, dropStore } from '../stores/sqlite.factory.js';
import { amqpUrl, natsUrl } from './brokers.js';

const run = randomBytes(4).toString('hex');
const namespace = `review_inbox_${run}`;
let store: AdminStore;

before(async () => {
  store = await createStore(namespace);
});
after(async () => {
  await store.close();
  await dropStore(namespace);
});

describe('the inbox under review', () => {
  it('answers a processed message whose stored value cannot be read back as a duplicate, not an error', async () => {
    const consumer = `unreadable-${run}`;
    await new Inbox({ store, consumer }).consume({ id: 'm-1' }, () => ({ total: 3 }));
    const changed = new Inbox({
      store,
      consumer,
      serializer: {
        encode: () => new Uint8Array(),
        decode: () => {
          throw new Error('not the format this serializer writes');
        },
      },
    });
    let ran = 0;
    const outcome = await changed.consume({ id: 'm-1' }, () => {
      ran += 1;
    });
    assert.deepEqual(outcome, { kind: 'duplicate', value: undefined });
    assert.equal(ran, 0);
  });
});

describe('the JetStream adapter under review', () => {
  it('settles a message and reports it when the retryDelayMs function throws, rather than rejecting', async () => {
    const nc = await connect({ servers: natsUrl });
    try {
      const jsm = await jetstreamManager(nc);
      const stream = `IDEM_REVIEW_BACKOFF_${run}`;
      const subject = `idem.review.backoff.${run}`;
      await jsm.streams.add({ name: stream, subjects: [subject] });
      await jsm.consumers.add(stream, { durable_name: 'worker', ack_policy: AckPolicy.Explicit });
      try {
        await jetstream(nc).publish(subject, 'fails');
        const message = await (await jetstream(nc).consumers.get(stream, 'worker')).next();
        assert.ok(message, 'the message was pulled');
        const errors: unknown[] = [];
        const onMessage = jetStreamHandler({
          inbox: new Inbox({ store, consumer: `backoff-${run}` }),
          retryDelayMs: () => {
            throw new Error('no backoff for you');
          },
          onError: (error) => errors.push(error),
          handler: () => {
            throw new Error('card declined');
          },
        });
        assert.equal(await onMessage(message), 'nak');
        assert.deepEqual(
          errors.map((error) => (error as Error).message),
          ['no backoff for you', 'card declined'],
        );
      } finally {
        await jsm.streams.delete(stream);
      }
    } finally {
      await nc.close();
    }
  });
  it('ends the loop without an unhandled rejection when the server ends the messages with an error', async () => {
    const nc = await connect({ servers: natsUrl });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const jsm = await jetstreamManager(nc);
      const stream = `IDEM_REVIEW_GONE_${run}`;
      await jsm.streams.add({ name: stream, subjects: [`idem.review.gone.${run}`] });
      await jsm.consumers.add(stream, { durable_name: 'worker', ack_policy: AckPolicy.Explicit });
      try {
        const consumer = await jetstream(nc).consumers.get(stream, 'worker');
        let ended: Promise<unknown> | undefined;
        const watched: JetStreamConsumerLike = {
          info: (cached) => consumer.info(cached),
          consume: async (options) => {
            const messages = await consumer.consume(options);
            ended = messages.closed();
            return messages;
          },
        };
        const loop = await consumeJetStream(watched, {
          inbox: new Inbox({ store, consumer: `gone-${run}` }),
          consume: { abort_on_missing_resource: true },
          handler: () => undefined,
        });
        await jsm.consumers.delete(stream, 'worker');
        assert.ok(ended);
        assert.ok((await ended) instanceof Error, 'the server ended the messages with an error');
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.deepEqual(unhandled, [], 'no unhandled rejection');
        await loop.stop();
        await assert.rejects(loop.done, /consumer deleted/, 'done carries why the loop ended');
      } finally {
        await jsm.streams.delete(stream);
      }
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await nc.close();
    }
  });
});

describe('the RabbitMQ adapter under review', () => {
  it('rejects an over-long id and a payload that cannot be fingerprinted, and goes on with the next message', async () => {
    const connection = await amqp.connect(amqpUrl);
    const channel = await connection.createChannel();
    const queue = `idem.test.review-bad-input.${run}`;
    try {
      await channel.assertQueue(queue, { durable: false });
      const handled: string[] = [];
      const errors: unknown[] = [];
      const cyclic: { self?: unknown } = {};
      cyclic.self = cyclic;
      const onMessage = amqpHandler({
        channel,
        inbox: new Inbox({ store, consumer: `bad-input-${run}` }),
        idOf: () => 'x'.repeat(256),
        payloadOf: (message) => {
          const body = message.content.toString();
          if (body === 'cyclic') return cyclic;
          if (body === 'big') return { amount: 10n ** 30n };
          return message.content;
        },
        onError: (error) => errors.push(error),
        handler: (message) => void handled.push(message.content.toString()),
      });
      const settled = new Map<string, AmqpSettlement | undefined>();
      await channel.consume(
        queue,
        (message) => {
          if (message !== null) void onMessage(message).then((s) => settled.set(message.content.toString(), s));
        },
        { noAck: false },
      );
      // AMQP carries at most 255 bytes in messageId: an over-long id can only come from idOf.
      channel.sendToQueue(queue, Buffer.from('long'));
      channel.sendToQueue(queue, Buffer.from('cyclic'), { messageId: 'c-1' });
      channel.sendToQueue(queue, Buffer.from('big'), { messageId: 'b-1' });
      channel.sendToQueue(queue, Buffer.from('fine'), { messageId: 'f-1' });
      const deadline = Date.now() + 10_000;
      while (settled.size < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(Object.fromEntries(settled), { long: 'reject', cyclic: 'reject', big: 'ack', fine: 'ack' });
      assert.deepEqual(handled.sort(), ['big', 'fine']);
      assert.deepEqual(errors.map((error) => (error as { code?: string }).code).sort(), [
        'FINGERPRINT_UNSUPPORTED',
        'KEY_INVALID',
      ]);
    } finally {
      await channel.deleteQueue(queue);
      await connection.close();
    }
  });
});
