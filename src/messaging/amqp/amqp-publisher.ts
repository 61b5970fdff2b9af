/**
 * The outbox relay's RabbitMQ publisher: each message goes to the exchange with its outbox id as
 * the AMQP `message-id`, so the consumer's inbox recognises a second copy (a relay that died
 * before marking publishes again). It waits for the broker's publisher confirms: a message counts
 * as published only once RabbitMQ has taken responsibility for it.
 */
import { ErrorCode, IdempotencyError } from '../../core/errors.js';
import type { OutboxPublisher, PendingMessage, PublishResult } from '../outbox/outbox.js';

/** The longest a Node timer waits, in ms: past it, Node fires after 1 ms and every confirm would be late. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The AMQP publish properties this publisher sets (a subset of amqplib's `Options.Publish`). */
export interface AmqpPublishProperties {
  messageId: string;
  headers: Record<string, string>;
  persistent: boolean;
  mandatory: boolean;
  timestamp: number;
}

/** A returned (unroutable) message, as amqplib emits it on `return`. */
export interface AmqpReturnedMessage {
  properties: { messageId?: unknown };
}

/**
 * The part of an amqplib `ConfirmChannel` (`await connection.createConfirmChannel()`) the
 * publisher uses.
 */
export interface AmqpConfirmChannelLike {
  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: AmqpPublishProperties,
    callback: (error: unknown) => void,
  ): boolean;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  on(event: 'return', listener: (message: AmqpReturnedMessage) => void): unknown;
  removeListener(event: 'drain' | 'close', listener: () => void): unknown;
  removeListener(event: 'return', listener: (message: AmqpReturnedMessage) => void): unknown;
}

export interface AmqpPublisherOptions {
  /** A confirm channel (`connection.createConfirmChannel()`); the publisher does not close it. */
  channel: AmqpConfirmChannelLike;
  /** The exchange messages are published to, with their topic as the routing key. Default `''` (the default exchange: the topic names a queue). */
  exchange?: string;
  /**
   * Publish with the `mandatory` flag, and count a message the broker returns as unroutable (no
   * queue bound for its topic) as failed, so it is retried and dead-lettered rather than lost.
   * Default false: an unroutable message is dropped by RabbitMQ and counts as published.
   */
  mandatory?: boolean;
  /**
   * How long to wait for the broker's confirms of one batch, in ms (1 to 2^31 - 1); messages not
   * confirmed by then fail. Default 30,000.
   */
  confirmTimeoutMs?: number;
}

/**
 * Publishes outbox messages to RabbitMQ with `message-id` set to the outbox id, `persistent`,
 * the message's headers, and its topic as the routing key; one result per message once the
 * broker has confirmed (ack) or refused (nack) it.
 *
 * @example
 * ```ts
 * const connection = await amqp.connect('amqp://localhost');
 * const channel = await connection.createConfirmChannel();
 * await channel.assertExchange('events', 'topic', { durable: true });
 * const relay = new OutboxRelay({ outbox, publisher: amqpPublisher({ channel, exchange: 'events' }) }).start();
 * ```
 */
export function amqpPublisher(options: AmqpPublisherOptions): OutboxPublisher {
  const {
    channel,
    exchange = '',
    mandatory = false,
    confirmTimeoutMs = 30_000,
  } = options ?? ({} as Partial<AmqpPublisherOptions>);
  // Refused now: a publisher without a channel, or without time to be confirmed, would fail every
  // message it is given, and the relay would move them all to the dead-letter state.
  if (typeof channel?.publish !== 'function') {
    throw misuse('amqpPublisher needs a confirm channel: channel: await connection.createConfirmChannel().');
  }
  if (!Number.isSafeInteger(confirmTimeoutMs) || confirmTimeoutMs < 1 || confirmTimeoutMs > MAX_TIMER_MS) {
    throw misuse(
      `confirmTimeoutMs must be a whole number of ms from 1 to ${MAX_TIMER_MS}, got ${String(confirmTimeoutMs)}.`,
    );
  }
  return {
    name: 'amqp',
    async publish(messages) {
      const returned = new Set<string>();
      const onReturn = (message: AmqpReturnedMessage) => returned.add(String(message.properties.messageId));
      if (mandatory) channel.on('return', onReturn);
      try {
        const confirms: Promise<PublishResult>[] = [];
        for (const message of messages) {
          const { confirm, writable } = publishOne(channel, exchange, mandatory, message, returned);
          confirms.push(confirm);
          // amqplib buffers what the socket cannot take yet; wait for room before writing more.
          if (!writable) await room(channel, confirmTimeoutMs);
        }
        return await withDeadline(confirms, confirmTimeoutMs);
      } finally {
        if (mandatory) channel.removeListener('return', onReturn);
      }
    },
  };
}

function publishOne(
  channel: AmqpConfirmChannelLike,
  exchange: string,
  mandatory: boolean,
  message: PendingMessage,
  returned: ReadonlySet<string>,
): { confirm: Promise<PublishResult>; writable: boolean } {
  let writable = true;
  const confirm = new Promise<PublishResult>((resolve) => {
    const properties: AmqpPublishProperties = {
      messageId: message.id,
      headers: message.headers,
      persistent: true,
      mandatory,
      timestamp: Math.floor(message.createdAtMs / 1000),
    };
    try {
      writable = channel.publish(exchange, message.topic, Buffer.from(message.payload), properties, (error) => {
        // RabbitMQ sends basic.return before the ack of the same message, so the set is filled by now.
        if (error !== null && error !== undefined) resolve({ ok: false, error: nackReason(error) });
        else if (returned.has(message.id))
          resolve({ ok: false, error: `unroutable: no queue is bound to ${describeRoute(exchange, message.topic)}` });
        else resolve({ ok: true });
      });
    } catch (error) {
      // A closed channel throws at once; the message was not sent.
      resolve({ ok: false, error: `not published: ${reasonOf(error)}` });
    }
  });
  return { confirm, writable };
}

/**
 * Resolves when the channel can take more (drain), or closes (the rest then fails at once), or
 * after `timeoutMs`: a pass must not wait forever with its messages locked.
 */
function room(channel: AmqpConfirmChannelLike, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      channel.removeListener('drain', done);
      channel.removeListener('close', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    channel.once('drain', done);
    channel.once('close', done);
  });
}

/** The results, with each one the broker has not confirmed within `timeoutMs` failed. */
async function withDeadline(confirms: Promise<PublishResult>[], timeoutMs: number): Promise<PublishResult[]> {
  let timer: NodeJS.Timeout | undefined;
  const late: PublishResult = { ok: false, error: `no confirm from the broker within ${timeoutMs} ms` };
  const deadline = new Promise<PublishResult>((resolve) => {
    timer = setTimeout(() => resolve(late), timeoutMs);
  });
  try {
    return await Promise.all(confirms.map((confirm) => Promise.race([confirm, deadline])));
  } finally {
    clearTimeout(timer);
  }
}

function nackReason(error: unknown): string {
  const reason = reasonOf(error);
  return /nack/i.test(reason) ? `the broker refused it (nack): ${reason}` : `not confirmed: ${reason}`;
}

function describeRoute(exchange: string, topic: string): string {
  return exchange === '' ? `queue ${topic} (default exchange)` : `routing key ${topic} on exchange ${exchange}`;
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function misuse(message: string): IdempotencyError {
  return new IdempotencyError(ErrorCode.INVALID_OPTIONS, `[idem] [amqp publisher] ${message}`);
}
