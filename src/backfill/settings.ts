/** The options of `backfill()`, checked once, with their defaults filled in. */
import { ErrorCode, IdempotencyError } from '../core/errors.js';
import { StoreLimits } from '../core/store.js';
import type { BackfillHandler, BackfillOptions, BackfillProgress } from './types.js';

/** Items' records are kept 30 days by default: a re-run within a month skips what is done. */
export const DEFAULT_BACKFILL_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;

/** The namespace of backfill keys: `storeKeyOf(BACKFILL_NAMESPACE, name, itemKey)`. */
export const BACKFILL_NAMESPACE = 'idem:backfill';

const MAX_NAME_LENGTH = 200;
const MAX_CONCURRENCY = 1000;
/** The longest a Node timer waits, in ms: past it, Node fires after 1 ms (progress, the lease's heartbeat). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The checked options. */
export interface BackfillSettings<T> {
  name: string;
  items: Iterable<T> | AsyncIterable<T>;
  keyOf: (item: T) => string;
  handler: BackfillHandler<T>;
  concurrency: number;
  maxAttempts: number;
  retryDelayMs: number;
  batchSize: number;
  total: number | undefined;
  onProgress: ((progress: BackfillProgress) => void) | undefined;
  progressIntervalMs: number;
  signal: AbortSignal | undefined;
}

/** Checks `options`; throws `INVALID_OPTIONS` saying what to give instead. */
export function settingsOf<T>(options: BackfillOptions<T>): BackfillSettings<T> {
  if (options === null || typeof options !== 'object') invalid('backfill(options) needs an options object.');
  const { items, key, handler } = options;
  if (typeof handler !== 'function') invalid('`handler` must be a function: the work to do for each item.');
  if (typeof key !== 'function') {
    invalid('`key` must be a function that gives each item its key (an id), e.g. key: (user) => user.id.');
  }
  if (!isIterable(items)) {
    invalid('`items` must be an array, an iterable or an async iterable (a generator, a cursor).');
  }
  const name = nameOf(options.name, handler);
  // The engine's heartbeat is a timer of `heartbeatMs` (a third of the lease by default).
  if (options.leaseMs !== undefined) whole('leaseMs', options.leaseMs, 1, MAX_TIMER_MS);
  if (options.heartbeatMs !== undefined) whole('heartbeatMs', options.heartbeatMs, 0, MAX_TIMER_MS);
  return {
    name,
    items,
    keyOf: key,
    handler,
    concurrency: whole('concurrency', options.concurrency ?? 8, 1, MAX_CONCURRENCY),
    maxAttempts: whole('maxAttempts', options.maxAttempts ?? 3, 1, Number.MAX_SAFE_INTEGER),
    retryDelayMs: whole('retryDelayMs', options.retryDelayMs ?? 200, 0, 30_000),
    batchSize: whole('batchSize', options.batchSize ?? 500, 1, StoreLimits.getManyKeys),
    total: totalOf(options.total, items),
    onProgress: progressCallback(options.onProgress),
    progressIntervalMs: whole('progressIntervalMs', options.progressIntervalMs ?? 1000, 1, MAX_TIMER_MS),
    signal: options.signal,
  };
}

/**
 * The backfill's name: the option, or the handler's own name. A function written in the options
 * object (`handler: async () => ...`, `async handler() {}`) is named `handler` by JavaScript: every
 * such backfill would share its records, so it needs a `name`.
 */
function nameOf(given: unknown, handler: BackfillHandler<never>): string {
  if (given === undefined) {
    const own = handler.name.replace(/^bound /, '');
    if (own !== '' && own !== 'handler' && own !== 'anonymous' && own.length <= MAX_NAME_LENGTH) return own;
    invalid(
      '`name` is required when the handler has no name of its own: give the backfill a name (its records are kept under it, and a re-run must use the same one), e.g. name: "backfill-invoices".',
    );
  }
  if (typeof given !== 'string' || given === '' || given.length > MAX_NAME_LENGTH) {
    invalid(`\`name\` must be a string of 1 to ${MAX_NAME_LENGTH} characters, got ${describe(given)}.`);
  }
  return given;
}

function totalOf(given: unknown, items: unknown): number | undefined {
  if (given !== undefined) return whole('total', given, 0, Number.MAX_SAFE_INTEGER);
  if (Array.isArray(items)) return items.length;
  if (items instanceof Set || items instanceof Map) return items.size;
  return undefined;
}

function progressCallback(given: unknown): ((progress: BackfillProgress) => void) | undefined {
  if (given === undefined || typeof given === 'function') return given as (progress: BackfillProgress) => void;
  return invalid(`\`onProgress\` must be a function, got ${describe(given)}.`);
}

function isIterable(value: unknown): value is Iterable<unknown> | AsyncIterable<unknown> {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false;
  const candidate = value as { [Symbol.iterator]?: unknown; [Symbol.asyncIterator]?: unknown };
  return typeof candidate[Symbol.iterator] === 'function' || typeof candidate[Symbol.asyncIterator] === 'function';
}

function whole(option: string, value: unknown, min: number, max: number): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max) return value;
  const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`;
  return invalid(`\`${option}\` must be a whole number ${range}, got ${describe(value)}.`);
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function invalid(message: string): never {
  throw new IdempotencyError(ErrorCode.INVALID_OPTIONS, `[idem] [backfill] ${message}`);
}

/** The error for an item whose key the `key` function could not give. */
export function badItemKey(value: unknown, index: number): IdempotencyError {
  const got =
    typeof value === 'string' ? 'an empty string' : `${typeof value === 'object' ? String(value) : typeof value}`;
  return new IdempotencyError(
    ErrorCode.INVALID_OPTIONS,
    `[idem] [backfill] the key function gave ${got} for item #${index}: it must give each item a non-empty string (its id, e.g. String(user.id)). The run stopped; items already done stay done.`,
  );
}
