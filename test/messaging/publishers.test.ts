// The relay's publishers against the real brokers: what arrives (id, headers, body), what counts
// as published, and what fails (a nack, an unroutable message, a subject no stream takes).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { headers, type NatsConnection, connect as natsConnect } from '@nats-io/transport-node';
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { isIdempotencyError } from '../../src/core/errors.js';
import { amqpPublisher } from '../../src/messaging/amqp/amqp-publisher.js';
import { jetstreamPublisher } from '../../src/messaging/jetstream/jetstream-publisher.js';
import type { PendingMessage } from '../../src/messaging/outbox/outbox.js';
import { amqpUrl, natsUrl } from './brokers.js';

const suffix = randomBytes(4).toString('hex');

function pending(id: string, topic: string, body: string, headers: Record<string, string> = {}): PendingMessage {
  return {
    id,
    seq: 1,
    topic,
    key: null,
    payload: Buffer.from(body),
    headers,
    attempts: 0,
    createdAtMs: Date.now(),
  };
}

describe('amqpPublisher', () => {
  let connection: ChannelModel;
  let channel: ConfirmChannel;
  const exchange = `relay_pub_${suffix}`;
  const queue = `relay_pub_q_${suffix}`;

  before(async () => {
    connection = await amqp.connect(amqpUrl);
    channel = await connection.createConfirmChannel();
    await channel.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
    await channel.assertQueue(queue, { durable: false });
    await channel.bindQueue(queue, exchange, 'orders.*');
  });
  after(async () => {
    await channel.deleteExchange(exchange).catch(() => {});
    await channel.deleteQueue(queue).catch(() => {});
    await connection.close();
  });

  it('publishes each message persistent, with its id as message-id, its headers, and its topic as routing key', async () => {
    const publisher = amqpPublisher({ channel, exchange });
    const results = await publisher.publish([
      pending('m-1', 'orders.created', '{"n":1}', { 'x-tenant': 'acme' }),
      pending('m-2', 'orders.paid', '{"n":2}'),
    ]);
    assert.deepEqual(results, [{ ok: true }, { ok: true }]);
    const got = [await channel.get(queue, { noAck: true }), await channel.get(queue, { noAck: true })];
    const [first, second] = got.map((message) => (message === false ? assert.fail('no message') : message));
    assert.equal(first?.properties.messageId, 'm-1');
    assert.equal(first?.properties.deliveryMode, 2);
    assert.equal(first?.properties.headers?.['x-tenant'], 'acme');
    assert.equal(first?.fields.routingKey, 'orders.created');
    assert.equal(first?.content.toString(), '{"n":1}');
    assert.equal(second?.properties.messageId, 'm-2');
  });

  it('fails a message the broker refuses (nack) and publishes the others', async () => {
    const full = `relay_pub_full_${suffix}`;
    await channel.assertQueue(full, { durable: false, maxLength: 1, arguments: { 'x-overflow': 'reject-publish' } });
    try {
      const results = await amqpPublisher({ channel }).publish([pending('f-1', full, 'a'), pending('f-2', full, 'b')]);
      assert.deepEqual(results[0], { ok: true });
      assert.equal(results[1]?.ok, false);
      assert.match(results[1]?.ok === false ? results[1].error : '', /nack/);
    } finally {
      await channel.deleteQueue(full);
    }
  });

  it('fails an unroutable message under mandatory, and counts it published without', async () => {
    const message = pending('u-1', 'nobody.listens', 'x');
    const [strict] = await amqpPublisher({ channel, exchange, mandatory: true }).publish([message]);
    assert.equal(strict?.ok, false);
    assert.match(strict?.ok === false ? strict.error : '', /unroutable/);
    assert.deepEqual(await amqpPublisher({ channel, exchange }).publish([message]), [{ ok: true }]);
  });

  it('fails every message once the channel is closed, without throwing', async () => {
    const closed = await connection.createConfirmChannel();
    await closed.close();
    const results = await amqpPublisher({ channel: closed, exchange }).publish([pending('c-1', 'orders.x', 'x')]);
    assert.equal(results[0]?.ok, false);
  });

  it('refuses a missing channel or a confirm timeout that is not a whole number of ms a timer can wait', () => {
    // Each would fail every message it publishes (no channel, or no time to confirm): all dead-lettered.
    for (const confirmTimeoutMs of [0, -1, Number.NaN, 1.5, 2 ** 31]) {
      assert.throws(
        () => amqpPublisher({ channel, confirmTimeoutMs }),
        (error) => isIdempotencyError(error, 'INVALID_OPTIONS') && /confirmTimeoutMs/.test(error.message),
      );
    }
    assert.throws(
      () => amqpPublisher({} as Parameters<typeof amqpPublisher>[0]),
      (error) => isIdempotencyError(error, 'INVALID_OPTIONS') && /createConfirmChannel/.test(error.message),
    );
  });
});

describe('jetstreamPublisher', () => {
  let nc: NatsConnection;
  const stream = `RELAY_PUB_${suffix}`;
  const subject = `relaypub${suffix}`;

  before(async () => {
    nc = await natsConnect({ servers: natsUrl });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`${subject}.>`], duplicate_window: 60_000_000_000 });
  });
  after(async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(stream).catch(() => {});
    await nc.close();
  });

  it('publishes with Nats-Msg-Id and headers, and stores a second copy of an id not at all', async () => {
    const publisher = jetstreamPublisher({ js: jetstream(nc), headers });
    const message = pending('j-1', `${subject}.created`, '{"n":1}', { 'x-tenant': 'acme' });
    assert.deepEqual(await publisher.publish([message]), [{ ok: true }]);
    assert.deepEqual(await publisher.publish([message]), [{ ok: true }], 'a duplicate PubAck counts as published');
    const jsm = await jetstreamManager(nc);
    assert.equal((await jsm.streams.info(stream)).state.messages, 1);
    const stored = await jsm.streams.getMessage(stream, { seq: 1 });
    assert.equal(stored?.header.get('Nats-Msg-Id'), 'j-1');
    assert.equal(stored?.header.get('x-tenant'), 'acme');
    assert.equal(stored?.string(), '{"n":1}');
  });

  it('fails a message with headers when no headers function was given, and one whose subject no stream takes', async () => {
    const publisher = jetstreamPublisher({ js: jetstream(nc), timeoutMs: 2000 });
    const results = await publisher.publish([
      pending('j-2', `${subject}.x`, 'x', { a: 'b' }),
      pending('j-3', `nostream${suffix}.x`, 'x'),
      pending('j-4', `${subject}.y`, 'y'),
    ]);
    assert.match(results[0]?.ok === false ? results[0].error : '', /pass jetstreamPublisher\(\{ js, headers \}\)/);
    assert.equal(results[1]?.ok, false);
    assert.deepEqual(results[2], { ok: true });
  });

  it('refuses a missing client or a timeout that is not a whole number of ms', () => {
    for (const timeoutMs of [0, -1, Number.NaN, 1.5]) {
      assert.throws(
        () => jetstreamPublisher({ js: jetstream(nc), timeoutMs }),
        (error) => isIdempotencyError(error, 'INVALID_OPTIONS') && /timeoutMs/.test(error.message),
      );
    }
    assert.throws(
      () => jetstreamPublisher({} as Parameters<typeof jetstreamPublisher>[0]),
      (error) => isIdempotencyError(error, 'INVALID_OPTIONS') && /jetstream\(nc\)/.test(error.message),
    );
  });
});
