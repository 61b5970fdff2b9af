/**
 * The inbox: a consumer that processes each message once, over a broker that delivers it at
 * least once. A message's id (or a key the consumer derives from it) is an engine key in the
 * consumer's namespace; the handler runs under its lease and the record completes before the
 * broker is told (ack), so a redelivery finds it completed and is acknowledged without running.
 */
import { fingerprintOf } from '../core/canonical.js';
import { Engine, type EngineOptions } from '../core/engine.js';
import { ErrorCode, IdempotencyError } from '../core/errors.js';
import { completeWith, replay, runHolding } from '../core/idempotent.js';
import { storeKeyOf, validateKey } from '../core/keys.js';
import { type Outcome, OutcomeKind } from '../core/outcome.js';
import { defaultSerializer, type ValueSerializer } from '../core/value-codec.js';

/** A processed message id is remembered for 7 days by default: longer than brokers keep redelivering. */
export const DEFAULT_INBOX_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

/** The namespace of inbox keys: `storeKeyOf(INBOX_NAMESPACE, consumer, messageId)`. */
export const INBOX_NAMESPACE = 'idem:inbox';

const MAX_CONSUMER_LENGTH = 200;

export interface InboxOptions extends Omit<EngineOptions, 'retentionMs'> {
  /**
   * The consumer's name (1 to 200 characters). Its message ids are apart from other consumers':
   * two services that consume the same message each process it once.
   */
  consumer: string;
  /**
   * How long a processed message id is remembered, in ms: a redelivery later than this runs the
   * handler again. Keep it above the broker's redelivery horizon. Default 7 days.
   */
  retentionMs?: number;
  /**
   * When the message is being processed by another consumer, wait up to this long (ms) for it to
   * finish before answering `in_progress`. Default 0: answer at once.
   */
  waitMs?: number;
  /** How the handler's return value is stored and replayed to redeliveries. Default: `defaultSerializer` (JSON when it round-trips exactly, else a v8 structured clone). */
  serializer?: ValueSerializer<unknown>;
}

/** A message as the inbox sees it. */
export interface InboxMessage {
  /** The message id, or a dedupe key derived from the payload: 1 to 255 characters. */
  id: string;
  /**
   * What the message carries, fingerprinted when given: a redelivery with the same id and another
   * payload is a `mismatch` (a producer reused an id) and the handler does not run.
   */
  payload?: unknown;
}

/** What a handler running under the inbox can read. */
export interface InboxContext {
  /** The message id. */
  id: string;
  /** The store key of the message's record: stable across redeliveries, usable as a downstream idempotency key. */
  key: string;
  /**
   * How many times the message's record has been claimed, this time included: 1 on a first
   * delivery and after a failed attempt released the key; more when this consumer took the
   * message over from one that died holding it.
   */
  attempts: number;
  /** Aborted when the lease is lost (another consumer took the message over): stop the work. */
  signal: AbortSignal;
}

/**
 * What became of a delivery, and what to tell the broker:
 * - `processed`: the handler ran now and its record completed: acknowledge.
 * - `duplicate`: processed before: acknowledge without running. `value` is what the handler
 *   returned then, or undefined when it could not be stored (over `maxResultBytes`, not serializable)
 *   or read back (the serializer changed).
 * - `in_progress`: another consumer is processing it now: leave it for redelivery (do not ack),
 *   for about `retryAfterMs`.
 * - `mismatch`: the id was processed with another payload: do not run; acknowledge or dead-letter.
 *
 * A handler that throws releases the message's key (the next delivery runs it again) and
 * `consume` throws what it threw: nack or leave the message for redelivery.
 */
export type ConsumeOutcome<T> =
  | { kind: 'processed'; value: T }
  | { kind: 'duplicate'; value: T | undefined }
  | { kind: 'in_progress'; retryAfterMs: number }
  | { kind: 'mismatch' };

/**
 * Processes messages once per consumer, whatever the broker redelivers.
 *
 * @example
 * ```ts
 * const inbox = new Inbox({ store, consumer: 'billing' });
 * const outcome = await inbox.consume({ id: message.id }, async () => chargeOrder(message.body));
 * if (outcome.kind === 'in_progress') requeueLater(message); else ack(message);
 * ```
 */
export class Inbox {
  /** The engine the inbox claims message keys with. */
  readonly engine: Engine;
  /** The consumer's name (the `consumer` option). */
  readonly consumer: string;
  readonly #waitMs: number;
  readonly #serializer: ValueSerializer<unknown>;

  constructor(options: InboxOptions) {
    const { consumer } = options;
    if (typeof consumer !== 'string' || consumer === '' || consumer.length > MAX_CONSUMER_LENGTH) {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] [inbox] consumer must be a name of 1 to ${MAX_CONSUMER_LENGTH} characters (it keeps this consumer's message ids apart from others'), got ${JSON.stringify(consumer)}.`,
      );
    }
    const waitMs = options.waitMs ?? 0;
    if (!Number.isSafeInteger(waitMs) || waitMs < 0) {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] [inbox] waitMs must be a whole number of ms, 0 or more, got ${String(waitMs)}.`,
      );
    }
    this.engine = new Engine({ ...options, retentionMs: options.retentionMs ?? DEFAULT_INBOX_RETENTION_MS });
    this.consumer = consumer;
    this.#waitMs = waitMs;
    this.#serializer = options.serializer ?? defaultSerializer;
  }

  /** The store key of message `id` for this consumer. */
  keyOf(id: string): string {
    return storeKeyOf(INBOX_NAMESPACE, this.consumer, validateKey(id));
  }

  /**
   * Runs `handler` for the message unless this consumer processed it already (see `ConsumeOutcome`).
   * Throws `KEY_MISSING`/`KEY_INVALID` for a missing or malformed id, `STORE_UNAVAILABLE` when the
   * store cannot be reached (the handler did not run: leave the message for redelivery), and what
   * the handler throws (its key released).
   */
  async consume<T>(
    message: InboxMessage,
    handler: (context: InboxContext) => T | Promise<T>,
  ): Promise<ConsumeOutcome<T>> {
    if (typeof handler !== 'function') {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        '[idem] [inbox] consume(message, handler) needs a handler function.',
      );
    }
    const id = validateKey(message?.id);
    const key = storeKeyOf(INBOX_NAMESPACE, this.consumer, id);
    const fingerprint = fingerprintOf(message.payload === undefined ? null : message.payload);
    const decision = await this.engine.begin({ key, fingerprint, waitMs: this.#waitMs });
    const serializer = this.#serializer as ValueSerializer<T>;
    switch (decision.kind) {
      case 'replay':
        return { kind: 'duplicate', value: replayed(decision.outcome, serializer, id) };
      case 'in_progress':
        return { kind: 'in_progress', retryAfterMs: decision.retryAfterMs };
      case 'mismatch':
        return { kind: 'mismatch' };
      case 'run': {
        const { lease } = decision;
        const context: InboxContext = {
          id,
          key,
          attempts: lease.attempts,
          get signal() {
            return lease.signal;
          },
        };
        const value = await runHolding(lease, undefined, async () => await handler(context));
        await completeWith(lease, value, serializer, `the handler of consumer ${this.consumer}`);
        return { kind: 'processed', value };
      }
    }
  }
}

/**
 * The stored value of a processed message; undefined when it was not stored or cannot be read
 * back (a serializer changed since), since the message is done either way: throwing would leave
 * it unacknowledged, redelivered for ever.
 */
function replayed<T>(outcome: Outcome, serializer: ValueSerializer<T>, id: string): T | undefined {
  if (outcome.kind !== OutcomeKind.value) return undefined;
  try {
    return replay(outcome, serializer, id, {});
  } catch {
    return undefined;
  }
}

/**
 * One message through an inbox made for it: `new Inbox(options).consume({ id, payload }, handler)`.
 * Prefer one long-lived `Inbox` per consumer in a loop; this is for a handler called now and then.
 *
 * @example
 * ```ts
 * const outcome = await consumeOnce({ store, consumer: 'emails', id: event.id, handler: () => sendWelcome(event) });
 * ```
 */
export async function consumeOnce<T>(
  options: InboxOptions & InboxMessage & { handler: (context: InboxContext) => T | Promise<T> },
): Promise<ConsumeOutcome<T>> {
  const { id, payload, handler, ...inboxOptions } = options;
  return await new Inbox(inboxOptions).consume({ id, payload }, handler);
}
