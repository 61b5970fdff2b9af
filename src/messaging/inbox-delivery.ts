/**
 * One delivery through the inbox, decided as what to tell the broker. The broker adapters
 * (amqp/, jetstream/) share it: they differ only in how they say ack, retry later and give up.
 */
import { ErrorCode, IdempotencyError, isIdempotencyError } from '../core/errors.js';
import type { ConsumeOutcome, InboxContext, InboxMessage } from './inbox.js';

/** Fewest ms a retry waits: a message redelivered at once would loop hot on a consumer that cannot take it. */
export const MIN_RETRY_DELAY_MS = 100;

/**
 * What to tell the broker about one delivery:
 * - `ack`: processed now or before (`outcome` says which): acknowledge.
 * - `retry`: not processed, through nobody's fault: another consumer holds the message
 *   (`in_progress`) or the store could not be reached or lost the lease (`store`); redeliver it
 *   after `delayMs`.
 * - `failed`: the handler threw `error`; the message's key is released, so a redelivery runs it again.
 * - `refused`: the message can never be processed: it has no usable id, or its id was processed
 *   with another payload; `error` says which. Do not redeliver it.
 */
export type DeliveryVerdict<T> =
  | { kind: 'ack'; outcome: Extract<ConsumeOutcome<T>, { kind: 'processed' | 'duplicate' }> }
  | { kind: 'retry'; reason: 'in_progress' | 'store'; delayMs: number; error?: unknown }
  | { kind: 'failed'; error: unknown }
  | { kind: 'refused'; error: unknown };

/**
 * An inbox a broker adapter can consume through: an `Inbox` (its handler gets the message's
 * `InboxContext`) or a `SqlInbox` (its handler gets the transaction, then the context).
 * `A` is what its handler gets.
 */
export interface ConsumerInbox<A extends unknown[] = [InboxContext]> {
  /** Runs `handler` for the message unless it was processed already (see `ConsumeOutcome`). */
  consume<T>(message: InboxMessage, handler: (...args: A) => T | Promise<T>): Promise<ConsumeOutcome<T>>;
}

/** How a delivery through `deliver` is set up. */
export interface DeliveryInput<M, A extends unknown[], T> {
  /** `[idem] [<face>]` in messages. */
  face: string;
  inbox: ConsumerInbox<A>;
  /** The broker's message. */
  message: M;
  /** The message's id and payload; may throw (a missing or malformed id refuses the message). */
  identify: (message: M) => InboxMessage;
  handler: (message: M, ...args: A) => T | Promise<T>;
  /** The delay before an `in_progress` message is redelivered, from the ms until the holder's lease ends. */
  inProgressDelayMs: (retryAfterMs: number) => number;
  /** Delay before a message is redelivered after a store failure, in ms. */
  storeRetryDelayMs: number;
  /** Called when the handler starts and when it settles: where an adapter keeps the broker's timer alive. */
  onHandling?: (running: boolean) => void;
}

/** Errors thrown before the claim that no redelivery can cure: the id or payload itself is unusable. */
const refusedCodes: ReadonlySet<string> = new Set([
  ErrorCode.KEY_MISSING,
  ErrorCode.KEY_INVALID,
  ErrorCode.FINGERPRINT_UNSUPPORTED,
]);

/**
 * Where a delivery is: the id being read and the record claimed, the handler running, the
 * handler done and its record being completed, or the handler failed. An error means something
 * different in each: before the handler nothing ran, after it the effect may have happened.
 */
type Phase = 'claiming' | 'handling' | 'completing' | 'handler_failed';

/** Runs one delivery through the inbox and says what the broker should be told. Never throws. */
export async function deliver<M, A extends unknown[], T>(input: DeliveryInput<M, A, T>): Promise<DeliveryVerdict<T>> {
  const { face, inbox, message } = input;
  let phase: Phase = 'claiming';
  let identified: InboxMessage | undefined;
  try {
    identified = input.identify(message);
    const outcome = await inbox.consume(identified, async (...args: A) => {
      phase = 'handling';
      input.onHandling?.(true);
      try {
        const value = await input.handler(message, ...args);
        phase = 'completing';
        return value;
      } catch (error) {
        phase = 'handler_failed';
        throw error;
      } finally {
        input.onHandling?.(false);
      }
    });
    switch (outcome.kind) {
      case 'processed':
      case 'duplicate':
        return { kind: 'ack', outcome };
      case 'in_progress':
        return {
          kind: 'retry',
          reason: 'in_progress',
          delayMs: Math.max(MIN_RETRY_DELAY_MS, input.inProgressDelayMs(outcome.retryAfterMs)),
        };
      case 'mismatch':
        return { kind: 'refused', error: mismatchError(face, identified.id) };
    }
  } catch (error) {
    return verdictOnError(input, phase, identified, error);
  }
}

function verdictOnError<M, A extends unknown[], T>(
  input: DeliveryInput<M, A, T>,
  phase: Phase,
  identified: InboxMessage | undefined,
  error: unknown,
): DeliveryVerdict<T> {
  if (phase === 'handler_failed') return { kind: 'failed', error };
  if (
    phase === 'claiming' &&
    (identified === undefined || (isIdempotencyError(error) && refusedCodes.has(error.code)))
  ) {
    return { kind: 'refused', error: unusableError(input.face, error) };
  }
  // The store failed before the handler ran (nothing happened), or after it (the lease was lost
  // or the record could not be completed): a redelivery finds the record completed by whoever
  // took over, or runs the handler again once the lease ends.
  return { kind: 'retry', reason: 'store', delayMs: Math.max(MIN_RETRY_DELAY_MS, input.storeRetryDelayMs), error };
}

function unusableError(face: string, cause: unknown): IdempotencyError {
  const code = isIdempotencyError(cause) ? cause.code : ErrorCode.KEY_INVALID;
  const reason = (cause instanceof Error ? cause.message : String(cause)).replace(/^\[idem\]\s*/, '');
  return new IdempotencyError(
    code,
    `[idem] [${face}] a message without a usable id was refused and not redelivered (dead-lettered where the broker has a place for it): ${reason} Give every message an id when it is published, or an idOf function that derives one from its content.`,
    { cause },
  );
}

function mismatchError(face: string, id: string): IdempotencyError {
  return new IdempotencyError(
    ErrorCode.FINGERPRINT_MISMATCH,
    `[idem] [${face}] message ${JSON.stringify(id)} was processed before with another payload: a producer reused its id. It was refused and not redelivered (dead-lettered where the broker has a place for it); give each distinct message its own id.`,
  );
}

/** A delay option, checked: a whole number of ms, 0 or more. */
export function delayOption(face: string, name: string, value: number | undefined, fallback: number): number {
  const delayMs = value ?? fallback;
  if (!Number.isSafeInteger(delayMs) || delayMs < 0) {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      `[idem] [${face}] ${name} must be a whole number of ms, 0 or more, got ${String(value)}.`,
    );
  }
  return delayMs;
}

/**
 * The `inProgressDelayMs` option as a function of the ms until the holder's lease ends: the
 * option when given (checked now), else `byDefault`.
 */
export function inProgressDelayOf(
  face: string,
  option: number | undefined,
  byDefault: (retryAfterMs: number) => number,
): (retryAfterMs: number) => number {
  if (option === undefined) return byDefault;
  const delayMs = delayOption(face, 'inProgressDelayMs', option, 0);
  return () => delayMs;
}

/** `onError` when none is given: the consumer goes on, the error is written to stderr. */
export function defaultOnError(face: string): (error: unknown) => void {
  return (error) => {
    if (isIdempotencyError(error)) console.error(error.message);
    else
      console.error(
        `[idem] [${face}] a message's handler failed (the message will be redelivered or dead-lettered):`,
        error,
      );
  };
}
