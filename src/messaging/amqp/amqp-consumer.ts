/**
 * The inbox on RabbitMQ (amqplib): each delivery goes through the inbox, and the broker is told
 * only once its record is complete, so a redelivery of a processed message is acknowledged
 * without running the handler. amqplib is an optional peer: only its types are imported here.
 */
import type { ConsumeMessage } from 'amqplib';
import { ErrorCode, IdempotencyError } from '../../core/errors.js';
import type { InboxContext, InboxMessage } from '../inbox.js';
import {
  type ConsumerInbox,
  type DeliveryVerdict,
  defaultOnError,
  delayOption,
  deliver,
  inProgressDelayOf,
} from '../inbox-delivery.js';

const FACE = 'amqp';

/**
 * The default wait for a message held elsewhere is at most this long (ms): the message keeps its
 * prefetch slot meanwhile, and the holder is usually done well before its lease would end.
 */
const MAX_DEFAULT_IN_PROGRESS_DELAY_MS = 5000;

/** The channel calls the adapter makes to settle a delivery: an amqplib `Channel` or `ConfirmChannel` is one. */
export interface AmqpChannelLike {
  /** Acknowledges the message: the broker forgets it. */
  ack(message: ConsumeMessage): void;
  /** Negatively acknowledges the message: requeued when `requeue`, else dropped or dead-lettered. */
  nack(message: ConsumeMessage, allUpTo?: boolean, requeue?: boolean): void;
}

/** A channel `consumeAmqp` can start and stop a consumer on: an amqplib `Channel` is one. */
export interface AmqpConsumingChannelLike extends AmqpChannelLike {
  /** Starts a consumer on `queue`; `onMessage` gets null when the broker cancels it. */
  consume(
    queue: string,
    onMessage: (message: ConsumeMessage | null) => void,
    options?: { noAck?: boolean; consumerTag?: string },
  ): Promise<{ consumerTag: string }>;
  /** Stops the consumer: no more deliveries to it. */
  cancel(consumerTag: string): Promise<unknown>;
}

/**
 * What the adapter told the broker about a delivery: `ack`, `requeue` (nack with requeue, after
 * a delay) or `reject` (nack without requeue: dead-lettered when the queue has a dead-letter
 * exchange, else dropped). Undefined for the null the broker sends when it cancels the consumer.
 */
export type AmqpSettlement = 'ack' | 'requeue' | 'reject';

export interface AmqpHandlerOptions<T, A extends unknown[] = [InboxContext]> {
  /** The channel the messages arrive on: they are settled on it. */
  channel: AmqpChannelLike;
  /**
   * The inbox that remembers which messages this consumer processed: an `Inbox` on any store,
   * or a `SqlInbox` whose record commits in the handler's own transaction.
   */
  inbox: ConsumerInbox<A>;
  /**
   * Processes one message; runs at most once per message id, whatever the broker redelivers. It
   * gets the message, then what the inbox gives: the `InboxContext` (an `Inbox`), or the
   * transaction and the context (a `SqlInbox`: write the effects with the transaction).
   */
  handler: (message: ConsumeMessage, ...args: A) => T | Promise<T>;
  /**
   * The message's id when it has no `messageId` property (the publisher's `messageId` option):
   * a key derived from its content, or undefined when there is none. Default: none, and a
   * message without `messageId` is rejected without requeue and reported to `onError`.
   */
  idOf?: (message: ConsumeMessage) => string | undefined;
  /**
   * What is fingerprinted: a redelivery whose payload differs from the first one's is a reused
   * id, rejected without requeue and reported. Default: the body (`message.content`).
   */
  payloadOf?: (message: ConsumeMessage) => unknown;
  /**
   * What to do when the handler throws (its key is released either way): `requeue` the message
   * after `retryDelayMs`, or `dead-letter` it (nack without requeue: to the queue's dead-letter
   * exchange, if any). A quorum queue's `delivery-limit` still dead-letters a message requeued
   * too often. Default `requeue`.
   */
  onFailure?: 'requeue' | 'dead-letter';
  /**
   * How long a message is held before it is requeued after a handler failure or a store outage,
   * in ms. RabbitMQ redelivers a requeued message at once: without the delay a failing message
   * would loop hot. The message keeps its prefetch slot meanwhile. Default 1,000.
   */
  retryDelayMs?: number;
  /**
   * How long a message that another consumer is processing is held before it is requeued, in
   * ms. Default: until the other consumer's lease ends (when, had it crashed, the message can be
   * taken over), at most 5,000 and at least 100.
   */
  inProgressDelayMs?: number;
  /**
   * Called with what the consumer went past: a handler's error, a message refused (no id, id
   * reused with another body), a store outage, a channel that could not settle a message.
   * Default: written to stderr. It must not throw.
   */
  onError?: (error: unknown, message: ConsumeMessage) => void;
}

/** The function to give `channel.consume(queue, onMessage, { noAck: false })`; its promise never rejects. */
export type AmqpMessageHandler = (message: ConsumeMessage | null) => Promise<AmqpSettlement | undefined>;

/**
 * The message callback of a RabbitMQ consumer that processes each message once: processed and
 * duplicate messages are acknowledged after their record completes; one that another consumer
 * is processing is requeued later; a failed one is requeued later or dead-lettered; one without
 * an id, or with a reused id, is rejected without requeue. Start the consumer with `noAck: false`.
 *
 * @example
 * ```ts
 * const inbox = new Inbox({ store, consumer: 'billing' });
 * await channel.prefetch(10);
 * await channel.consume('orders', amqpHandler({ channel, inbox, handler: (message) => charge(message.content) }), {
 *   noAck: false,
 * });
 * ```
 */
export function amqpHandler<T, A extends unknown[] = [InboxContext]>(
  options: AmqpHandlerOptions<T, A>,
): AmqpMessageHandler {
  const deliveries = new AmqpDeliveries<A>(options);
  return async function onMessage(message) {
    return await deliveries.onMessage(message);
  };
}

/** A consumer started by `consumeAmqp`. */
export interface AmqpConsumer {
  /** The consumer tag the broker gave it. */
  readonly consumerTag: string;
  /**
   * Cancels the consumer, requeues at once the messages waiting out a retry delay, and resolves
   * when every delivery it received is settled. The channel stays open.
   */
  stop(): Promise<void>;
}

/** Options of `consumeAmqp`: those of `amqpHandler` without the channel, which is given apart. */
export interface ConsumeAmqpOptions<T, A extends unknown[] = [InboxContext]>
  extends Omit<AmqpHandlerOptions<T, A>, 'channel'> {
  /** The consumer tag to ask for. Default: one the broker makes up. */
  consumerTag?: string;
}

/**
 * Starts a consumer on `queue` that processes each message once (see `amqpHandler`), with
 * manual acknowledgement. Set the channel's prefetch first: it bounds the messages handled at once.
 *
 * @example
 * ```ts
 * const consumer = await consumeAmqp(channel, 'orders', { inbox, handler: (message) => charge(message.content) });
 * process.once('SIGTERM', () => void consumer.stop());
 * ```
 */
export async function consumeAmqp<T, A extends unknown[] = [InboxContext]>(
  channel: AmqpConsumingChannelLike,
  queue: string,
  options: ConsumeAmqpOptions<T, A>,
): Promise<AmqpConsumer> {
  const { consumerTag: askedTag, ...handlerOptions } = options;
  const deliveries = new AmqpDeliveries<A>({ ...handlerOptions, channel });
  const consumeOptions = askedTag === undefined ? { noAck: false } : { noAck: false, consumerTag: askedTag };
  const { consumerTag } = await channel.consume(queue, (message) => void deliveries.onMessage(message), consumeOptions);
  let stopping: Promise<void> | undefined;
  return {
    consumerTag,
    stop() {
      stopping ??= (async () => {
        await channel.cancel(consumerTag).catch(() => {
          // A closed channel has no consumer left to cancel.
        });
        await deliveries.drain();
      })();
      return stopping;
    },
  };
}

/** The deliveries of one consumer: each settled on the channel, the ones waiting to be requeued kept to flush on stop. */
class AmqpDeliveries<A extends unknown[]> {
  readonly #channel: AmqpChannelLike;
  readonly #inbox: ConsumerInbox<A>;
  readonly #handler: (message: ConsumeMessage, ...args: A) => unknown;
  readonly #idOf: ((message: ConsumeMessage) => string | undefined) | undefined;
  readonly #payloadOf: (message: ConsumeMessage) => unknown;
  readonly #requeueOnFailure: boolean;
  readonly #retryDelayMs: number;
  readonly #inProgressDelayMs: (retryAfterMs: number) => number;
  readonly #onError: (error: unknown, message: ConsumeMessage) => void;
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #delays = new Delays();

  constructor(options: AmqpHandlerOptions<unknown, A>) {
    if (typeof options.channel?.ack !== 'function' || typeof options.channel.nack !== 'function') {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] [${FACE}] needs the channel the messages arrive on (one with ack and nack).`,
      );
    }
    if (typeof options.handler !== 'function' || typeof options.inbox?.consume !== 'function') {
      throw new IdempotencyError(ErrorCode.INVALID_OPTIONS, `[idem] [${FACE}] needs an inbox and a handler function.`);
    }
    if (options.onFailure !== undefined && options.onFailure !== 'requeue' && options.onFailure !== 'dead-letter') {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] [${FACE}] onFailure must be 'requeue' or 'dead-letter', got ${JSON.stringify(options.onFailure)}.`,
      );
    }
    this.#channel = options.channel;
    this.#inbox = options.inbox;
    this.#handler = options.handler;
    this.#idOf = options.idOf;
    this.#payloadOf = options.payloadOf ?? ((message) => message.content);
    this.#requeueOnFailure = options.onFailure !== 'dead-letter';
    this.#retryDelayMs = delayOption(FACE, 'retryDelayMs', options.retryDelayMs, 1000);
    this.#inProgressDelayMs = inProgressDelayOf(FACE, options.inProgressDelayMs, (retryAfterMs) =>
      Math.min(retryAfterMs, MAX_DEFAULT_IN_PROGRESS_DELAY_MS),
    );
    this.#onError = options.onError ?? defaultOnError(FACE);
  }

  onMessage(message: ConsumeMessage | null): Promise<AmqpSettlement | undefined> {
    if (message === null) return Promise.resolve(undefined);
    const settled = this.#process(message);
    this.#inFlight.add(settled);
    void settled.finally(() => this.#inFlight.delete(settled));
    return settled;
  }

  /** Resolves once every delivery received so far is settled, requeueing at once those waiting out a delay. */
  async drain(): Promise<void> {
    this.#delays.cut();
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
  }

  async #process(message: ConsumeMessage): Promise<AmqpSettlement> {
    const verdict = await deliver({
      face: FACE,
      inbox: this.#inbox,
      message,
      identify: (delivered) => this.#identify(delivered),
      handler: this.#handler,
      inProgressDelayMs: this.#inProgressDelayMs,
      storeRetryDelayMs: this.#retryDelayMs,
    });
    return await this.#settle(message, verdict);
  }

  #identify(message: ConsumeMessage): InboxMessage {
    const messageId: unknown = message.properties.messageId;
    const id = typeof messageId === 'string' && messageId !== '' ? messageId : this.#idOf?.(message);
    return { id: id as string, payload: this.#payloadOf(message) };
  }

  async #settle(message: ConsumeMessage, verdict: DeliveryVerdict<unknown>): Promise<AmqpSettlement> {
    switch (verdict.kind) {
      case 'ack':
        return this.#tell(message, 'ack');
      case 'retry':
        if (verdict.error !== undefined) this.#report(verdict.error, message);
        await this.#delays.wait(verdict.delayMs);
        return this.#tell(message, 'requeue');
      case 'failed':
        this.#report(verdict.error, message);
        if (!this.#requeueOnFailure) return this.#tell(message, 'reject');
        await this.#delays.wait(this.#retryDelayMs);
        return this.#tell(message, 'requeue');
      case 'refused':
        this.#report(verdict.error, message);
        return this.#tell(message, 'reject');
    }
  }

  /** Settles `message` on the channel; a channel that refuses (closed: the broker requeues by itself) is reported. */
  #tell(message: ConsumeMessage, settlement: AmqpSettlement): AmqpSettlement {
    try {
      if (settlement === 'ack') this.#channel.ack(message);
      else this.#channel.nack(message, false, settlement === 'requeue');
    } catch (error) {
      this.#report(error, message);
    }
    return settlement;
  }

  #report(error: unknown, message: ConsumeMessage): void {
    try {
      this.#onError(error, message);
    } catch {
      // onError must not stop the consumer.
    }
  }
}

/** Timers that can all be cut short: a stopping consumer requeues its waiting messages at once. */
class Delays {
  readonly #waiting = new Map<NodeJS.Timeout, () => void>();
  #cut = false;

  wait(delayMs: number): Promise<void> {
    if (this.#cut) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(timer);
        resolve();
      }, delayMs);
      this.#waiting.set(timer, resolve);
    });
  }

  /** Ends every wait now, and every later one at once. */
  cut(): void {
    this.#cut = true;
    for (const [timer, resolve] of this.#waiting) {
      clearTimeout(timer);
      resolve();
    }
    this.#waiting.clear();
  }
}
