/** The shapes `backfill()` takes and gives: options, the handler's context, progress, result. */
import type { EngineOptions } from '../core/engine.js';

/** What a handler can read about the item it is given. */
export interface BackfillContext {
  /** The item's key, as the `key` option derived it. */
  key: string;
  /**
   * A stable key for the item's effect: the same in every run and every process for this backfill
   * name and item key (a hash, 43 characters). Write the effect keyed by it (`INSERT ... ON
   * CONFLICT DO NOTHING`, an `Idempotency-Key` header) so that a second run of the handler after
   * a crash between the effect and its record does nothing.
   */
  idempotencyKey: string;
  /** Which call of the handler this is for the item in this run: 1, then 2... up to `maxAttempts`. */
  attempt: number;
  /**
   * How many times the item has been claimed, this claim included: more than 1 when a runner that
   * held it stopped (crashed, was killed) and this run took it over. The handler may have run for
   * it before, and its effect may be there.
   */
  claims: number;
  /** Aborted when another runner took the item over (this runner stalled past its lease): stop. */
  signal: AbortSignal;
}

/** An item that failed every attempt. Its key was released: the next run tries it again. */
export interface BackfillFailure {
  /** The item's key. */
  key: string;
  /** What the last attempt threw (or why the item's completion could not be recorded). */
  error: unknown;
}

/** How far a backfill has come, given to `onProgress`. */
export interface BackfillProgress {
  /** The backfill's name. */
  name: string;
  /** Items processed by this run (the handler ran and the item's record completed). */
  done: number;
  /** Items found done already (by an earlier run, another runner, or a duplicate key in this one). */
  skipped: number;
  /** Items that failed every attempt in this run (listed in the result). */
  failed: number;
  /** Handler calls that threw and were tried again. */
  retried: number;
  /** Items being processed right now. */
  inFlight: number;
  /** Items held by another runner's lease, to be looked at again when it ends. */
  waiting: number;
  /** `done + skipped + failed`. */
  settled: number;
  /** How many items there are, when known: an array's length, or the `total` option. */
  total: number | undefined;
  /** Time since the run started, in ms. */
  elapsedMs: number;
  /** Items settled per second over the last few seconds (the whole run at its end). */
  itemsPerSecond: number;
  /** Time left at the current rate, in ms; `undefined` when `total` is not known or nothing has settled yet. */
  remainingMs: number | undefined;
}

/** What a run did. `done + skipped + failed.length` is every item the run read, unless it was stopped. */
export interface BackfillResult {
  /** The backfill's name. */
  name: string;
  /** Items processed by this run. */
  done: number;
  /** Items found done already. */
  skipped: number;
  /** Items that failed every attempt, with their last error; each key was released for the next run. */
  failed: BackfillFailure[];
  /** Handler calls that threw and were tried again. */
  retried: number;
  /** True when `signal` stopped the run before it read every item: run it again to go on. */
  stopped: boolean;
  /** How long the run took, in ms. */
  elapsedMs: number;
}

/** The handler: the work to do once per item. Its return value is not kept. */
export type BackfillHandler<T> = (item: T, context: BackfillContext) => unknown;

export interface BackfillOptions<T> extends Omit<EngineOptions, 'retentionMs'> {
  /**
   * The items, read lazily: an array, any iterable, or an async iterable (a database cursor, a
   * paginated API). At most about `3 × batchSize + concurrency` items are held at once.
   */
  items: Iterable<T> | AsyncIterable<T>;
  /**
   * The item's key: a non-empty string that names the item for good (an id), so that every run
   * sees the item under the same key. Items with equal keys are one item: the first is processed,
   * the others are counted as skipped.
   */
  key: (item: T) => string;
  /** The work to do once per item (see `BackfillContext`). A throw is retried, then reported. */
  handler: BackfillHandler<T>;
  /**
   * The backfill's name (1 to 200 characters): its items' records are kept under it, so a re-run
   * must use the same name, and two backfills with different names are independent. Default: the
   * handler function's own name, when it has a telling one (not `handler`, not anonymous).
   */
  name?: string;
  /** Items processed at once: a whole number from 1 to 1000. Default 8. */
  concurrency?: number;
  /** Calls of the handler per item in this run before it is reported failed: 1 or more. Default 3. */
  maxAttempts?: number;
  /** Pause before the second call of a failing handler, in ms, doubled for each further call (at most 30 s). Default 200. */
  retryDelayMs?: number;
  /**
   * Items whose records are read at once (one `getMany` where the store has it): 1 to 1000.
   * Default 500. Larger batches make a re-run over finished items faster and hold more items in memory.
   */
  batchSize?: number;
  /** How long an item's record is kept, in ms: a run later than this processes the item again. Default 30 days. */
  retentionMs?: number;
  /** How many items there are, for `remainingMs`, when `items` is not an array. Default: an array's length, else unknown. */
  total?: number;
  /** Called with the progress every `progressIntervalMs` and once at the end. */
  onProgress?: (progress: BackfillProgress) => void;
  /** How often `onProgress` is called, in ms: 1 to 2^31 - 1 (a Node timer's longest). Default 1000. */
  progressIntervalMs?: number;
  /**
   * Stops the run: no new item is started, items in progress finish (or fail), and the result
   * says `stopped: true`. A later run goes on from there.
   */
  signal?: AbortSignal;
}
