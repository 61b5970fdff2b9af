/**
 * The inbox on NATS JetStream: each message goes through the inbox and is acknowledged only once
 * its record is complete, so a redelivery of a processed message is acked without running the
 * handler. `@nats-io/jetstream` is an optional peer: only its types are imported here.
 */
import type { ConsumeOptions, ConsumerInfo, ConsumerMessages, JsMsg } from '@nats-io/jetstream';
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

const FACE = 'jetstream';

/** The header JetStream dedupes publishes by; the inbox takes it as the message id. */
export const NATS_MSG_ID_HEADER = 'Nats-Msg-Id';

/** JetStream's default ack wait (30 s): `working()` goes out three times within it. */
const DEFAULT_WORKING_EVERY_MS = 10_000;

/** What the adapter told the server about a message: `ack`, `nak` (redeliver after a delay) or `term` (never again). */
export type JetStreamSettlement = 'ack' | 'nak' | 'term';

export interface JetStreamHandlerOptions<T, A extends unknown[] = [InboxContext]> {
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
  handler: (message: JsMsg, ...args: A) => T | Promise<T>;
  /**
   * The message's id when it has no `Nats-Msg-Id` header: a key derived from its content, or
   * undefined for the default, `<stream>:<stream sequence>` (the same on every redelivery of the
   * stored message, but reused if the stream is deleted and made again).
   */
  idOf?: (message: JsMsg) => string | undefined;
  /**
   * What is fingerprinted: a message whose payload differs from that of the first message with
   * its id is a reused id, terminated and reported. Default: the data (`message.data`).
   */
  payloadOf?: (message: JsMsg) => unknown;
  /**
   * What to do when the handler throws (its key is released either way): `retry` (nak with
   * `retryDelayMs`) or `terminate` (term: never redelivered). Default `retry`.
   */
  onFailure?: 'retry' | 'terminate';
  /**
   * The consumer's `max_deliver`: a failure on this delivery is answered with `term` and a
   * reason, since the server would not deliver the message again anyway. 0 or less: unlimited.
   * Default: unlimited (`consumeJetStream` reads the consumer's own).
   */
  maxDeliver?: number;
  /**
   * How long the server waits before redelivering a message whose handler failed, in ms, or a
   * function of the delivery count (1 on the first delivery). Also the delay after a store
   * outage. Default: 1,000 ms doubling with each delivery, at most 60,000 (also used, and the
   * function's failure reported, when the function throws or answers no whole number of ms).
   */
  retryDelayMs?: number | ((deliveryCount: number) => number);
  /**
   * How long the server waits before redelivering a message that another consumer is
   * processing, in ms. Default: until that consumer's lease ends, at least 100 ms. Each
   * redelivery counts toward `max_deliver`: keep `max_deliver` unlimited or well above
   * `leaseMs / inProgressDelayMs`.
   */
  inProgressDelayMs?: number;
  /**
   * While the handler runs, `working()` tells the server this often (ms) that the message is
   * not lost, so its ack wait does not run out. 0: never. Default 10,000 (a third of the
   * default ack wait; `consumeJetStream` takes a third of the consumer's `ack_wait`).
   */
  workingEveryMs?: number;
  /**
   * Called with what the consumer went past: a handler's error, a message refused (id reused
   * with another payload), a store outage. Default: written to stderr. It must not throw.
   */
  onError?: (error: unknown, message: JsMsg) => void;
}

/** A function that processes one JetStream message once and settles it; its promise never rejects. */
export type JetStreamMessageHandler = (message: JsMsg) => Promise<JetStreamSettlement>;

/**
 * Processes a JetStream message once per inbox: processed and duplicate messages are acked after
 * their record completes; one that another consumer is processing is nak'ed with a delay; a
 * failed one is nak'ed with a backoff, or terminated; one with a reused id is terminated.
 *
 * @example
 * ```ts
 * const onMessage = jetStreamHandler({ inbox, handler: (message) => charge(message.json()) });
 * for await (const message of await consumer.consume()) await onMessage(message);
 * ```
 */
export function jetStreamHandler<T, A extends unknown[] = [InboxContext]>(
  options: JetStreamHandlerOptions<T, A>,
): JetStreamMessageHandler {
  const deliveries = new JetStreamDeliveries<A>(options);
  return async function onMessage(message) {
    return await deliveries.process(message);
  };
}

/** The consumer calls `consumeJetStream` makes: a JetStream `Consumer` (pull) has them. */
export interface JetStreamConsumerLike {
  /** Starts pulling messages. */
  consume(options?: ConsumeOptions): Promise<ConsumerMessages>;
  /** The consumer's configuration (its `ack_wait` and `max_deliver` are read once). */
  info(cached?: boolean): Promise<ConsumerInfo>;
}

export interface ConsumeJetStreamOptions<T, A extends unknown[] = [InboxContext]>
  extends JetStreamHandlerOptions<T, A> {
  /** Messages handled at once. Default 1. */
  concurrency?: number;
  /**
   * Options of `consumer.consume()`, e.g. `{ max_messages: 100 }`. Messages pulled but not yet
   * handled count against the ack wait: keep the buffer small next to `concurrency` when the
   * handler is slow. Default: the client's.
   */
  consume?: ConsumeOptions;
}

/** A loop started by `consumeJetStream`. */
export interface JetStreamConsumer {
  /** Stops pulling and resolves when every message taken is settled; messages pulled but not taken are redelivered after the ack wait. */
  stop(): Promise<void>;
  /**
   * Resolves when the loop ends: after `stop()`, or when the server's messages end. Rejects with
   * the client's error when they end in one (the consumer deleted under
   * `abort_on_missing_resource`, the connection closed), once every message taken is settled;
   * left unobserved, that rejection does not end the process.
   */
  readonly done: Promise<void>;
}

/**
 * Pulls messages from a JetStream consumer and processes each once (see `jetStreamHandler`),
 * up to `concurrency` at once. Unless given, `workingEveryMs` and `maxDeliver` follow the
 * consumer's `ack_wait` and `max_deliver`.
 *
 * @example
 * ```ts
 * const consumer = await jetstream(nc).consumers.get('ORDERS', 'billing');
 * const loop = await consumeJetStream(consumer, { inbox, handler: (message) => charge(message.json()), concurrency: 8 });
 * process.once('SIGTERM', () => void loop.stop());
 * ```
 */
export async function consumeJetStream<T, A extends unknown[] = [InboxContext]>(
  consumer: JetStreamConsumerLike,
  options: ConsumeJetStreamOptions<T, A>,
): Promise<JetStreamConsumer> {
  const concurrency = options.concurrency ?? 1;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      `[idem] [${FACE}] concurrency must be a whole number, 1 or more, got ${String(options.concurrency)}.`,
    );
  }
  const { config } = await consumer.info(true);
  const deliveries = new JetStreamDeliveries<A>({
    ...options,
    workingEveryMs: options.workingEveryMs ?? Math.max(1, Math.floor(Number(config.ack_wait ?? 30e9) / 1e6 / 3)),
    maxDeliver: options.maxDeliver ?? config.max_deliver ?? 0,
  });
  const messages = await consumer.consume(options.consume);
  const done = pump(messages, deliveries, concurrency);
  // The docs' own example never awaits `done`: its rejection must not be an unhandled one, which
  // ends a Node process.
  done.catch(() => {});
  let stopping: Promise<void> | undefined;
  return {
    done,
    stop() {
      stopping ??= (async () => {
        await messages.close().catch(() => {
          // Closed already, with its connection: nothing left to pull.
        });
        await done.catch(() => {
          // The loop ended in an error: `done` carries it; stopping is done either way.
        });
      })();
      return stopping;
    },
  };
}

/**
 * Takes messages as they come, `concurrency` at a time; settles once the messages end (rejecting
 * when they end in an error) and each taken is settled.
 */
async function pump<A extends unknown[]>(
  messages: ConsumerMessages,
  deliveries: JetStreamDeliveries<A>,
  concurrency: number,
): Promise<void> {
  const inFlight = new Set<Promise<unknown>>();
  try {
    for await (const message of messages) {
      const settled = deliveries.process(message);
      inFlight.add(settled);
      void settled.finally(() => inFlight.delete(settled));
      if (inFlight.size >= concurrency) await Promise.race(inFlight);
    }
  } finally {
    await Promise.all(inFlight);
  }
}

/** The default `retryDelayMs`: 1 s doubling with each delivery, at most 60 s. */
function defaultRetryDelayMs(deliveryCount: number): number {
  return Math.min(60_000, 1000 * 2 ** Math.min(16, Math.max(0, deliveryCount - 1)));
}

/** The `retryDelayMs` option as a function of the delivery count. */
function retryDelayOf(
  option: JetStreamHandlerOptions<unknown, unknown[]>['retryDelayMs'],
): (deliveryCount: number) => number {
  if (typeof option === 'function') return option;
  if (option === undefined) return defaultRetryDelayMs;
  const delayMs = delayOption(FACE, 'retryDelayMs', option, 0);
  return () => delayMs;
}

/** The settings of one consumer, and how each message's verdict becomes ack, nak or term. */
class JetStreamDeliveries<A extends unknown[]> {
  readonly #options: JetStreamHandlerOptions<unknown, A>;
  readonly #retryDelayMs: (deliveryCount: number) => number;
  readonly #inProgressDelayMs: (retryAfterMs: number) => number;
  readonly #workingEveryMs: number;
  readonly #maxDeliver: number;
  readonly #onError: (error: unknown, message: JsMsg) => void;

  constructor(options: JetStreamHandlerOptions<unknown, A>) {
    if (typeof options.handler !== 'function' || typeof options.inbox?.consume !== 'function') {
      throw new IdempotencyError(ErrorCode.INVALID_OPTIONS, `[idem] [${FACE}] needs an inbox and a handler function.`);
    }
    if (options.onFailure !== undefined && options.onFailure !== 'retry' && options.onFailure !== 'terminate') {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] [${FACE}] onFailure must be 'retry' or 'terminate', got ${JSON.stringify(options.onFailure)}.`,
      );
    }
    this.#options = options;
    this.#retryDelayMs = retryDelayOf(options.retryDelayMs);
    // The server keeps the timer, so waiting out the whole lease costs nothing here, and spends
    // the fewest deliveries of max_deliver.
    this.#inProgressDelayMs = inProgressDelayOf(FACE, options.inProgressDelayMs, (retryAfterMs) => retryAfterMs);
    this.#workingEveryMs = delayOption(FACE, 'workingEveryMs', options.workingEveryMs, DEFAULT_WORKING_EVERY_MS);
    this.#maxDeliver = options.maxDeliver ?? 0;
    this.#onError = options.onError ?? defaultOnError(FACE);
  }

  async process(message: JsMsg): Promise<JetStreamSettlement> {
    let working: NodeJS.Timeout | undefined;
    const retryDelayMs = this.#retryDelayFor(message);
    const verdict = await deliver({
      face: FACE,
      inbox: this.#options.inbox,
      message,
      identify: (delivered) => this.#identify(delivered),
      handler: this.#options.handler,
      inProgressDelayMs: this.#inProgressDelayMs,
      storeRetryDelayMs: retryDelayMs,
      onHandling: (running) => {
        clearInterval(working);
        if (running && this.#workingEveryMs > 0) working = setInterval(() => message.working(), this.#workingEveryMs);
      },
    });
    return this.#settle(message, verdict, retryDelayMs);
  }

  /**
   * The redelivery delay of `message` after a failure. A `retryDelayMs` function that throws or
   * answers no whole number of ms 0 or more is reported and the default backoff used: a rejection
   * here would leave the message unsettled, and NaN would nak it for at once redelivery.
   */
  #retryDelayFor(message: JsMsg): number {
    const deliveryCount = message.info.deliveryCount;
    let delayMs: unknown;
    try {
      delayMs = this.#retryDelayMs(deliveryCount);
    } catch (error) {
      this.#report(error, message);
      return defaultRetryDelayMs(deliveryCount);
    }
    if (typeof delayMs === 'number' && Number.isSafeInteger(delayMs) && delayMs >= 0) return delayMs;
    this.#report(
      new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] [${FACE}] retryDelayMs(${deliveryCount}) must answer a whole number of ms, 0 or more, got ${String(delayMs)}; the default backoff was used.`,
      ),
      message,
    );
    return defaultRetryDelayMs(deliveryCount);
  }

  #identify(message: JsMsg): InboxMessage {
    const header = message.headers?.get(NATS_MSG_ID_HEADER);
    const id =
      header !== undefined && header !== ''
        ? header
        : (this.#options.idOf?.(message) ?? `${message.info.stream}:${message.info.streamSequence}`);
    return { id, payload: this.#options.payloadOf === undefined ? message.data : this.#options.payloadOf(message) };
  }

  #settle(message: JsMsg, verdict: DeliveryVerdict<unknown>, retryDelayMs: number): JetStreamSettlement {
    switch (verdict.kind) {
      case 'ack':
        return this.#tell(message, () => message.ack(), 'ack');
      case 'retry':
        if (verdict.error !== undefined) this.#report(verdict.error, message);
        return this.#tell(message, () => message.nak(verdict.delayMs), 'nak');
      case 'failed':
        return this.#onFailed(message, verdict.error, retryDelayMs);
      case 'refused':
        this.#report(verdict.error, message);
        return this.#term(message);
    }
  }

  #onFailed(message: JsMsg, error: unknown, retryDelayMs: number): JetStreamSettlement {
    this.#report(error, message);
    const deliveryCount = message.info.deliveryCount;
    const lastDelivery = this.#maxDeliver > 0 && deliveryCount >= this.#maxDeliver;
    if (this.#options.onFailure === 'terminate' || lastDelivery) return this.#term(message);
    return this.#tell(message, () => message.nak(retryDelayMs), 'nak');
  }

  /**
   * Never redelivered. Without a reason: servers before 2.11 do not read `+TERM <reason>` as a
   * term and would redeliver the message; the reason went to `onError`.
   */
  #term(message: JsMsg): JetStreamSettlement {
    return this.#tell(message, () => message.term(), 'term');
  }

  /** Tells the server; a closed connection (the server redelivers after the ack wait) is reported. */
  #tell(message: JsMsg, say: () => void, settlement: JetStreamSettlement): JetStreamSettlement {
    try {
      say();
    } catch (error) {
      this.#report(error, message);
    }
    return settlement;
  }

  #report(error: unknown, message: JsMsg): void {
    try {
      this.#onError(error, message);
    } catch {
      // onError must not stop the consumer.
    }
  }
}
