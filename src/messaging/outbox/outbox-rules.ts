/**
 * The rules of the outbox contract (see `OutboxStore` in `outbox.ts`), written once for the SQL
 * outboxes: what a message may hold and how it is stored, what a relay pass may be asked, what a
 * publish answer turns each message into, and how their errors read. Each store keeps only its SQL.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode, IdempotencyError, isIdempotencyError } from '../../core/errors.js';
import type { MisconfigurationAdvice } from '../../store-kit/errors.js';
import type { OutboxMessage, PendingMessage, PublishResult, RelayPassInput, RelayPassResult } from './outbox.js';

export const OutboxLimits = {
  /** The longest topic, message id and ordering key, in characters (UTF-16 code units). */
  maxNameLength: 255,
  /** The default largest payload, in bytes: 1 MiB. */
  defaultMaxPayloadBytes: 1024 * 1024,
  /** The largest `maxPayloadBytes` an outbox may be given: 64 MiB. */
  maxPayloadBytesCeiling: 64 * 1024 * 1024,
  /** The largest headers, as their JSON text, in bytes. */
  maxHeadersBytes: 64 * 1024,
  /** The most messages one relay pass may lock. */
  maxRelayLimit: 1000,
  /** The longest publish error kept as `last_error`, in characters; longer ones are cut. */
  maxErrorLength: 2000,
  /** `dead()` lists this many by default, and at most `maxListLimit`. */
  defaultDeadLimit: 100,
  maxListLimit: 1000,
  /** `cleanup()` deletes this many by default. */
  defaultCleanupLimit: 1000,
} as const;

/** A message as the tables store it: every field checked, the payload and headers encoded. */
export interface EncodedMessage {
  id: string;
  topic: string;
  key: string | null;
  payload: Uint8Array;
  /** The headers as JSON text (`{}` when none). */
  headers: string;
  /** When it becomes due, ms since epoch; 0 (due at once, whatever the relay's clock) by default. */
  nextAttemptAtMs: number;
  createdAtMs: number;
}

/** `[idem] [postgres outbox]`: how messages name an outbox. */
export function outboxLabel(dialect: string): string {
  return `[idem] [${dialect} outbox]`;
}

/** `INVALID_OPTIONS` from an outbox: `message` says what is wrong and what to do. */
export function outboxMisuse(dialect: string, message: string): IdempotencyError {
  return new IdempotencyError(ErrorCode.INVALID_OPTIONS, `${outboxLabel(dialect)} ${message}`);
}

/** The `maxPayloadBytes` option: a whole number from 1 to 64 MiB; default 1 MiB. */
export function checkMaxPayloadBytes(dialect: string, value: number | undefined): number {
  if (value === undefined) return OutboxLimits.defaultMaxPayloadBytes;
  if (Number.isSafeInteger(value) && value >= 1 && value <= OutboxLimits.maxPayloadBytesCeiling) return value;
  throw outboxMisuse(
    dialect,
    `maxPayloadBytes must be a whole number from 1 to ${OutboxLimits.maxPayloadBytesCeiling}, got ${describe(value)}.`,
  );
}

/**
 * `message` checked and encoded, or `INVALID_OPTIONS` saying what is wrong (the caller has written
 * nothing yet). Strings are stored as their UTF-8 bytes, bytes as they are, anything else as its
 * JSON text; a payload over `maxPayloadBytes` is refused.
 */
export function encodeMessage(
  dialect: string,
  message: OutboxMessage,
  maxPayloadBytes: number,
  nowMs: number,
): EncodedMessage {
  if (typeof message !== 'object' || message === null) {
    throw outboxMisuse(
      dialect,
      `enqueue(): the message must be an object with a topic and a payload, got ${describe(message)}.`,
    );
  }
  const topic = checkName(dialect, 'topic', message.topic);
  const id = message.id === undefined ? randomUUID() : checkName(dialect, 'id', message.id);
  const key = message.key === undefined || message.key === null ? null : checkName(dialect, 'key', message.key);
  const { notBeforeMs } = message;
  if (notBeforeMs !== undefined && !(Number.isSafeInteger(notBeforeMs) && notBeforeMs >= 0)) {
    throw outboxMisuse(
      dialect,
      `enqueue(): notBeforeMs must be a whole number of ms since the epoch, got ${describe(notBeforeMs)}.`,
    );
  }
  const payload = encodePayload(dialect, message.payload);
  if (payload.byteLength > maxPayloadBytes) {
    throw outboxMisuse(
      dialect,
      `enqueue(): the payload of message ${JSON.stringify(id)} is ${payload.byteLength} bytes, over the outbox's maxPayloadBytes (${maxPayloadBytes}); nothing was written. Store large bodies elsewhere and send a reference, or raise maxPayloadBytes.`,
    );
  }
  return {
    id,
    topic,
    key,
    payload,
    headers: encodeHeaders(dialect, message.headers),
    nextAttemptAtMs: notBeforeMs ?? 0,
    createdAtMs: nowMs,
  };
}

/** A topic, id or key: a well-formed string of 1 to 255 characters without NUL. */
function checkName(dialect: string, field: 'topic' | 'id' | 'key', value: unknown): string {
  const max = OutboxLimits.maxNameLength;
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw outboxMisuse(
      dialect,
      `enqueue(): the ${field} must be a string of 1 to ${max} characters, got ${describe(value)}; nothing was written.`,
    );
  }
  // NUL cannot be stored in PostgreSQL text; a lone surrogate would come back as U+FFFD, another id.
  if (value.includes('\0') || Buffer.from(value, 'utf8').toString('utf8') !== value) {
    throw outboxMisuse(
      dialect,
      `enqueue(): the ${field} ${describe(value)} holds a NUL character or a lone surrogate; nothing was written.`,
    );
  }
  return value;
}

function encodePayload(dialect: string, payload: unknown): Uint8Array {
  if (payload instanceof Uint8Array) return payload;
  if (typeof payload === 'string') return Buffer.from(payload, 'utf8');
  if (payload instanceof ArrayBuffer || ArrayBuffer.isView(payload)) {
    throw outboxMisuse(
      dialect,
      'enqueue(): a binary payload must be a Uint8Array (or a Buffer); wrap it with new Uint8Array(...).',
    );
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(payload);
  } catch (error) {
    throw outboxMisuse(
      dialect,
      `enqueue(): the payload cannot be written as JSON (${(error as Error).message}); pass a string, bytes or a JSON value.`,
    );
  }
  if (text === undefined) {
    throw outboxMisuse(
      dialect,
      `enqueue(): the payload ${describe(payload)} has no JSON form; pass a string, bytes or a JSON value.`,
    );
  }
  return Buffer.from(text, 'utf8');
}

function encodeHeaders(dialect: string, headers: unknown): string {
  if (headers === undefined || headers === null) return '{}';
  const proto = typeof headers === 'object' ? Object.getPrototypeOf(headers) : undefined;
  if (proto !== Object.prototype && proto !== null) {
    throw outboxMisuse(dialect, `enqueue(): headers must be a plain object of strings, got ${describe(headers)}.`);
  }
  for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
    if (name.length === 0 || name.length > OutboxLimits.maxNameLength) {
      throw outboxMisuse(
        dialect,
        `enqueue(): a header name must be 1 to ${OutboxLimits.maxNameLength} characters, got ${describe(name)}.`,
      );
    }
    if (typeof value !== 'string') {
      throw outboxMisuse(
        dialect,
        `enqueue(): the header ${JSON.stringify(name)} must be a string, got ${describe(value)}; nothing was written.`,
      );
    }
  }
  const text = JSON.stringify(headers);
  if (Buffer.byteLength(text) > OutboxLimits.maxHeadersBytes) {
    throw outboxMisuse(
      dialect,
      `enqueue(): the headers take ${Buffer.byteLength(text)} bytes as JSON, over ${OutboxLimits.maxHeadersBytes}; nothing was written.`,
    );
  }
  return text;
}

/** Throws `INVALID_OPTIONS` unless `input` is a relay pass the stores can run. */
export function checkRelayInput(dialect: string, input: RelayPassInput): void {
  const { limit, nowMs, publish, retryAtMs } = input ?? ({} as Partial<RelayPassInput>);
  if (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > OutboxLimits.maxRelayLimit) {
    throw outboxMisuse(
      dialect,
      `relay(): limit must be a whole number from 1 to ${OutboxLimits.maxRelayLimit}, got ${describe(limit)}.`,
    );
  }
  if (!Number.isSafeInteger(nowMs)) {
    throw outboxMisuse(dialect, `relay(): nowMs must be a whole number of ms since the epoch, got ${describe(nowMs)}.`);
  }
  if (typeof publish !== 'function' || typeof retryAtMs !== 'function') {
    throw outboxMisuse(dialect, 'relay(): publish and retryAtMs must be functions.');
  }
}

/** A row of the due scan, as the drivers return it (integers as number, bigint or string). */
export interface PendingRow {
  seq: number | bigint | string;
  id: string | Uint8Array;
  topic: string | Uint8Array;
  key: string | Uint8Array | null;
  payload: Uint8Array;
  headers: string | Uint8Array;
  attempts: number | bigint | string;
  created_at_ms: number | bigint | string;
}

/** The message a row holds. */
export function pendingOf(row: PendingRow): PendingMessage {
  return {
    id: textOf(row.id),
    seq: Number(row.seq),
    topic: textOf(row.topic),
    key: row.key === null ? null : textOf(row.key),
    payload: row.payload,
    headers: JSON.parse(textOf(row.headers)) as Record<string, string>,
    attempts: Number(row.attempts),
    createdAtMs: Number(row.created_at_ms),
  };
}

/** Text as a driver gave it: a string, or UTF-8 bytes (MySQL's VARBINARY columns). */
export function textOf(value: string | Uint8Array): string {
  return typeof value === 'string'
    ? value
    : Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
}

/** A message that failed: its new attempt count, its error, and when to try again (`undefined`: dead). */
export interface FailedMark {
  seq: number;
  attempts: number;
  error: string;
  nextAttemptAtMs: number | undefined;
}

/** What a relay pass writes once `publish` answered. */
export interface PassMarks {
  /** The seqs to mark published. */
  published: number[];
  /** The seqs that failed: retried later, or dead (`nextAttemptAtMs` undefined). */
  failed: FailedMark[];
}

/**
 * What `publish`'s answer turns `messages` into: published, failed (attempts + 1, next attempt at
 * `retryAtMs`) or dead (`retryAtMs` answered `undefined`). Throws `INVALID_OPTIONS` for an answer
 * that is not one result per message, or a `retryAtMs` that is not a time: the pass then rolls
 * back, and its messages are published again.
 */
export function marksOf(
  dialect: string,
  messages: readonly PendingMessage[],
  results: readonly PublishResult[],
  input: RelayPassInput,
): PassMarks {
  if (!Array.isArray(results) || results.length !== messages.length) {
    throw outboxMisuse(
      dialect,
      `relay(): publish must answer one result per message (${messages.length}), got ${Array.isArray(results) ? results.length : describe(results)}; the pass was rolled back and its messages stay pending.`,
    );
  }
  const marks: PassMarks = { published: [], failed: [] };
  messages.forEach((message, index) => {
    const result = results[index] as PublishResult | undefined;
    if (result?.ok === true) {
      marks.published.push(message.seq);
      return;
    }
    const attempts = message.attempts + 1;
    // NUL cannot be stored in PostgreSQL text.
    const error = String((result as { error?: unknown } | undefined)?.error ?? 'publish answered no result')
      .replaceAll('\0', '')
      .slice(0, OutboxLimits.maxErrorLength);
    const next = input.retryAtMs({ ...message, attempts }, attempts);
    if (next !== undefined && !Number.isFinite(next)) {
      throw outboxMisuse(
        dialect,
        `relay(): retryAtMs must answer a time in ms or undefined, got ${describe(next)}; the pass was rolled back.`,
      );
    }
    marks.failed.push({
      seq: message.seq,
      attempts,
      error,
      nextAttemptAtMs: next === undefined ? undefined : Math.ceil(next),
    });
  });
  return marks;
}

/** The pass's result from its marks. */
export function passResult(claimed: number, marks: PassMarks): RelayPassResult {
  const dead = marks.failed.filter((mark) => mark.nextAttemptAtMs === undefined).length;
  return { claimed, published: marks.published.length, failed: marks.failed.length - dead, dead };
}

/** A pass that found nothing due. */
export const EMPTY_PASS: RelayPassResult = Object.freeze({ claimed: 0, published: 0, failed: 0, dead: 0 });

/** `cleanup()`'s arguments checked: the cutoff, and the limit (default 1000). */
export function checkCleanup(dialect: string, beforeMs: number, limit: number | undefined): number {
  if (!Number.isSafeInteger(beforeMs)) {
    throw outboxMisuse(
      dialect,
      `cleanup(): beforeMs must be a whole number of ms since the epoch, got ${describe(beforeMs)}.`,
    );
  }
  if (limit === undefined) return OutboxLimits.defaultCleanupLimit;
  if (Number.isSafeInteger(limit) && limit >= 1) return limit;
  throw outboxMisuse(dialect, `cleanup(): limit must be a whole number of at least 1, got ${describe(limit)}.`);
}

/** `dead()`'s limit checked: 1 to 1000, default 100. */
export function checkDeadLimit(dialect: string, limit: number | undefined): number {
  if (limit === undefined) return OutboxLimits.defaultDeadLimit;
  if (Number.isInteger(limit) && limit >= 1 && limit <= OutboxLimits.maxListLimit) return limit;
  throw outboxMisuse(
    dialect,
    `dead(): limit must be a whole number from 1 to ${OutboxLimits.maxListLimit}, got ${describe(limit)}.`,
  );
}

/** `revive()`'s id checked. */
export function checkReviveId(dialect: string, id: string): void {
  if (typeof id !== 'string' || id.length === 0 || id.length > OutboxLimits.maxNameLength) {
    throw outboxMisuse(
      dialect,
      `revive(): the id must be a string of 1 to ${OutboxLimits.maxNameLength} characters, got ${describe(id)}.`,
    );
  }
}

/** What happened to the outbox when an operation failed: said at the end of its error. */
const AFTER: Record<string, string> = {
  enqueue: 'Nothing was written; the transaction it ran in may be unusable: roll it back and retry.',
  relay:
    "The pass's transaction was rolled back: its messages stay pending and are published again, with the same ids.",
  other: 'Nothing was changed; check that the database is reachable and retry.',
};

/**
 * The error for a driver failure in `operation`: `STORE_MISCONFIGURED` when `advice` recognises a
 * configuration mistake, else `STORE_UNAVAILABLE`; Idem's own errors pass as they are. The
 * driver's error is kept as `cause`.
 */
export function outboxFailure(
  dialect: string,
  operation: string,
  error: unknown,
  advice: MisconfigurationAdvice,
): IdempotencyError {
  if (isIdempotencyError(error)) return error;
  const reason = (error instanceof Error ? error.message : String(error)).replace(/[.\s]+$/, '');
  const after = AFTER[operation] ?? AFTER.other;
  const fix = advice(error);
  if (fix !== undefined) {
    return new IdempotencyError(
      ErrorCode.STORE_MISCONFIGURED,
      `${outboxLabel(dialect)} ${operation} refused: ${reason}: ${fix}. ${after}`,
      { cause: error },
    );
  }
  return new IdempotencyError(
    ErrorCode.STORE_UNAVAILABLE,
    `${outboxLabel(dialect)} ${operation} failed: ${reason}. ${after}`,
    {
      cause: error,
    },
  );
}

/** `STORE_CLOSED` for an outbox used after `close()`. */
export function outboxClosed(dialect: string, operation: string, factory: string): IdempotencyError {
  return new IdempotencyError(
    ErrorCode.STORE_CLOSED,
    `${outboxLabel(dialect)} ${operation} after close(): the outbox was closed; create a new one with ${factory}().`,
  );
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (value === null || typeof value !== 'object') return String(value);
  return value.constructor?.name ?? 'an object';
}
