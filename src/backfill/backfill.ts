/**
 * The backfill runner: every item of a collection processed to completion once, across re-runs,
 * crashes and runners working side by side. Each item is an engine key in the backfill's
 * namespace; a batch of keys is read at once (`getMany`), items found completed are skipped
 * without a write, and only the others are claimed, one by one, and run under their lease.
 */
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { fingerprintOf } from '../core/canonical.js';
import { Engine, type Lease } from '../core/engine.js';
import { ErrorCode, IdempotencyError, isIdempotencyError } from '../core/errors.js';
import { storeKeyOf } from '../core/keys.js';
import { type Outcome, OutcomeKind } from '../core/outcome.js';
import type { IdempotencyRecord } from '../core/store.js';
import { getMany } from '../store-kit/get-many.js';
import { batchesOf } from './batches.js';
import { ProgressMeter } from './progress-meter.js';
import {
  BACKFILL_NAMESPACE,
  type BackfillSettings,
  badItemKey,
  DEFAULT_BACKFILL_RETENTION_MS,
  settingsOf,
} from './settings.js';
import type { BackfillContext, BackfillFailure, BackfillOptions, BackfillResult } from './types.js';
import { WorkQueue } from './work-queue.js';

/** An item on its way: the item, its key, and its record's store key. */
interface Task<T> {
  item: T;
  key: string;
  storeKey: string;
  /** How many times it was put aside because another runner held it. */
  waits: number;
}

/** A batch of items and the read of their records, started when it was read. */
interface ReadBatch<T> {
  tasks: Task<T>[];
  records: Promise<(IdempotencyRecord | null)[]>;
  /** When the records were read, in ms since the epoch. */
  nowMs: number;
}

/** Every item's record completes with nothing in it: the record's state is what counts. */
const DONE: Outcome = { kind: OutcomeKind.value, payload: new Uint8Array(0) };
/** Items are told apart by key alone: an item whose content changed under the same key is still done. */
const FINGERPRINT = fingerprintOf(BACKFILL_NAMESPACE);
const MAX_PAUSE_MS = 30_000;
/**
 * The longest stretch, in ms, the run keeps the event loop to itself. A store that answers at once
 * (SQLite, memory) and a handler that does too chain every item on microtasks: without a turn of
 * the event loop now and then, no timer (the leases' heartbeat, progress) and no signal would run.
 */
const MAX_TURN_MS = 20;
/** An item held by another runner is looked at again after 50 ms, then 100, 200... up to this, in ms, or when the lease ends. */
const MAX_LOOK_AGAIN_MS = 2000;

/**
 * Processes each item once, however many times the backfill runs: a run skips the items an
 * earlier run finished, takes over those a killed run left in progress (once their lease ends),
 * retries a failing handler `maxAttempts` times and then reports the item failed (and releases
 * it, so the next run tries again). Resolves with what the run did; rejects only when it cannot
 * go on (the store is unreachable, the key function gives no key), items done so far staying done.
 *
 * @example
 * ```ts
 * import { backfill } from 'idem/backfill';
 * import { SqliteStore } from 'idem/sqlite';
 *
 * const result = await backfill({
 *   name: 'welcome-credits',
 *   items: users, // an array, or an async iterable such as a database cursor
 *   key: (user) => user.id,
 *   handler: async (user, { idempotencyKey }) => grantCredit(user.id, 500, idempotencyKey),
 *   store: new SqliteStore({ path: './idem.db' }),
 *   onProgress: (p) => console.log(`${p.done} done, ${p.skipped} skipped, ${p.failed} failed`),
 * });
 * // run it again: every item is skipped
 * ```
 */
export async function backfill<T>(options: BackfillOptions<T>): Promise<BackfillResult> {
  const settings = settingsOf(options);
  const engine = new Engine({ ...options, retentionMs: options.retentionMs ?? DEFAULT_BACKFILL_RETENTION_MS });
  return await new BackfillRun(settings, engine).run();
}

/** The store key of an item's record, e.g. to look it up with `idem keys show`. */
export function backfillKeyOf(name: string, itemKey: string): string {
  return storeKeyOf(BACKFILL_NAMESPACE, name, itemKey);
}

/** One run: a reader that sorts items by their records, and `concurrency` workers that claim and run them. */
class BackfillRun<T> {
  readonly #settings: BackfillSettings<T>;
  readonly #engine: Engine;
  readonly #meter: ProgressMeter;
  readonly #queue: WorkQueue<Task<T>>;
  /** Items being processed, by store key: a duplicate key waits for the first to settle. */
  readonly #inFlight = new Map<string, Promise<void>>();
  readonly #failures: BackfillFailure[] = [];
  /** Aborted when the run stops taking items (its signal, or an error it cannot go on after). */
  readonly #halt = new AbortController();
  #fatal: { error: unknown } | undefined;
  /** True once every item was read and sorted; with nothing dropped on a stop, the run went to its end. */
  #readAll = false;
  #dropped = 0;
  #turnStartedMs = performance.now();

  constructor(settings: BackfillSettings<T>, engine: Engine) {
    this.#settings = settings;
    this.#engine = engine;
    this.#meter = new ProgressMeter(settings.name, settings.total, engine.now);
    this.#queue = new WorkQueue(settings.batchSize);
  }

  async run(): Promise<BackfillResult> {
    const { signal, onProgress, progressIntervalMs, concurrency } = this.#settings;
    const stop = () => this.#stop();
    signal?.addEventListener('abort', stop, { once: true });
    if (signal?.aborted) stop();
    const ticker = onProgress === undefined ? undefined : setInterval(() => this.#report(), progressIntervalMs);
    ticker?.unref();
    try {
      const workers = Array.from({ length: concurrency }, () => this.#work());
      await Promise.all([this.#read().catch((error: unknown) => this.#stop(error)), ...workers]);
    } finally {
      clearInterval(ticker);
      signal?.removeEventListener('abort', stop);
    }
    this.#report(true);
    if (this.#fatal !== undefined) throw this.#fatal.error;
    const meter = this.#meter;
    return {
      name: this.#settings.name,
      done: meter.done,
      skipped: meter.skipped,
      failed: this.#failures,
      retried: meter.retried,
      stopped: this.#halt.signal.aborted && (!this.#readAll || this.#dropped > 0),
      elapsedMs: meter.elapsedMs,
    };
  }

  /** Stops taking items; with `error`, the run rejects with it once the items in progress settle. */
  #stop(error?: unknown): void {
    if (error !== undefined) this.#fatal ??= { error };
    this.#halt.abort();
    this.#dropped += this.#queue.stop();
  }

  #report(final = false): void {
    const { onProgress } = this.#settings;
    if (onProgress === undefined) return;
    try {
      onProgress(this.#meter.snapshot(this.#queue.waiting, final));
    } catch (error) {
      if (!final) this.#stop(error);
    }
  }

  /** Lets the event loop turn when the run has kept it for `MAX_TURN_MS`. */
  async #yieldNow(): Promise<void> {
    if (performance.now() - this.#turnStartedMs < MAX_TURN_MS) return;
    await nextTurn();
    this.#turnStartedMs = performance.now();
  }

  /**
   * Reads the items batch by batch: skips those whose record is completed, queues the rest. The
   * next batch's records are read while this one is sorted, so a re-run over finished items waits
   * for the store and works at the same time.
   */
  async #read(): Promise<void> {
    const { items, batchSize } = this.#settings;
    let index = 0;
    let previous: ReadBatch<T> | undefined;
    try {
      for await (const batch of batchesOf(items, batchSize)) {
        await this.#yieldNow();
        if (this.#halt.signal.aborted) break;
        const current = this.#readRecords(batch.map((item) => this.#taskOf(item, index++)));
        if (previous !== undefined) await this.#sort(previous);
        previous = current;
      }
      if (previous !== undefined && !this.#halt.signal.aborted) await this.#sort(previous);
      this.#readAll = !this.#halt.signal.aborted;
    } finally {
      this.#queue.close();
    }
  }

  #readRecords(tasks: Task<T>[]): ReadBatch<T> {
    const nowMs = this.#engine.now();
    const keys = tasks.map((task) => task.storeKey);
    const records = this.#storeCall(() => this.#engine.call('getMany', () => getMany(this.#engine.store, keys, nowMs)));
    // Awaited later, after the batch before it is sorted: not an unhandled rejection meanwhile.
    records.catch(() => {});
    return { tasks, records, nowMs };
  }

  async #sort(batch: ReadBatch<T>): Promise<void> {
    const { tasks, nowMs } = batch;
    const records = await batch.records;
    for (const [i, task] of tasks.entries()) {
      const record = records[i];
      if (record?.state === 'completed') this.#meter.skipped++;
      else if (
        record?.state === 'in_progress' &&
        record.leaseExpiresAtMs > nowMs &&
        !this.#inFlight.has(task.storeKey)
      ) {
        this.#putAside(task, record.leaseExpiresAtMs, nowMs);
      } else {
        await this.#queue.put(task);
        if (this.#halt.signal.aborted) return;
      }
    }
  }

  #taskOf(item: T, index: number): Task<T> {
    let key: unknown;
    try {
      key = this.#settings.keyOf(item);
    } catch (cause) {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] [backfill] the key function threw for item #${index}: ${cause instanceof Error ? cause.message : String(cause)}. The run stopped; items already done stay done.`,
        { cause },
      );
    }
    if (typeof key !== 'string' || key === '') throw badItemKey(key, index);
    return { item, key, storeKey: storeKeyOf(BACKFILL_NAMESPACE, this.#settings.name, key), waits: 0 };
  }

  /**
   * Another runner holds the item until `leaseEndsAtMs`: look again soon (it may finish any time)
   * and less often the longer it holds it, and at the latest when its lease ends, to take it over
   * if that runner died.
   */
  #putAside(task: Task<T>, leaseEndsAtMs: number, nowMs: number): void {
    const lookAgainMs = Math.min(MAX_LOOK_AGAIN_MS, 50 * 2 ** task.waits);
    task.waits++;
    // After a stop, the item is dropped: it was read, yet neither done, skipped nor failed.
    if (!this.#queue.defer(task, Math.max(nowMs + 1, Math.min(leaseEndsAtMs, nowMs + lookAgainMs)))) this.#dropped++;
  }

  async #work(): Promise<void> {
    for (;;) {
      await this.#yieldNow();
      const task = await this.#queue.take(this.#engine.now);
      if (task === undefined) return;
      try {
        await this.#settle(task);
      } catch (error) {
        this.#stop(error);
      } finally {
        this.#queue.finished();
      }
    }
  }

  async #settle(task: Task<T>): Promise<void> {
    for (let pending = this.#inFlight.get(task.storeKey); pending !== undefined; ) {
      await pending;
      pending = this.#inFlight.get(task.storeKey);
    }
    let settled = () => {};
    this.#inFlight.set(
      task.storeKey,
      new Promise<void>((resolve) => {
        settled = resolve;
      }),
    );
    this.#meter.inFlight++;
    try {
      await this.#claimAndRun(task);
    } finally {
      this.#meter.inFlight--;
      this.#inFlight.delete(task.storeKey);
      settled();
    }
  }

  async #claimAndRun(task: Task<T>): Promise<void> {
    const engine = this.#engine;
    const decision = await this.#storeCall(() => engine.begin({ key: task.storeKey, fingerprint: FINGERPRINT }));
    switch (decision.kind) {
      case 'replay':
        this.#meter.skipped++;
        return;
      case 'in_progress':
        this.#putAside(task, decision.record.leaseExpiresAtMs, engine.now());
        return;
      case 'mismatch':
        this.#fail(task, mismatch(task, this.#settings.name));
        return;
      case 'run':
        await this.#runHolding(task, decision.lease);
    }
  }

  /** Calls the handler under `lease` up to `maxAttempts` times, then completes the record or releases the key. */
  async #runHolding(task: Task<T>, lease: Lease): Promise<void> {
    const { handler, maxAttempts } = this.#settings;
    let failure: { error: unknown } | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        await handler(task.item, contextOf(task, lease, attempt));
        failure = undefined;
        break;
      } catch (error) {
        failure = { error };
        if (attempt >= maxAttempts || this.#halt.signal.aborted) break;
        this.#meter.retried++;
        await this.#pause(attempt);
      }
    }
    if (failure !== undefined) {
      // Released, not completed: the next run tries the item again.
      await lease.release().catch(() => {});
      this.#fail(task, failure.error);
      return;
    }
    try {
      await this.#storeCall(() => lease.complete(DONE), true);
      this.#meter.done++;
    } catch (error) {
      this.#fail(task, notRecorded(task, error));
    }
  }

  #fail(task: Task<T>, error: unknown): void {
    this.#meter.failed++;
    this.#failures.push({ key: task.key, error });
  }

  /**
   * Runs a store call, trying again after a pause while the store is unavailable, up to
   * `maxAttempts` calls. Other errors (a lost lease) are not retried. Unless `keepGoing`, gives
   * up at once when the run stops.
   */
  async #storeCall<R>(call: () => Promise<R>, keepGoing = false): Promise<R> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        const retry = isIdempotencyError(error, ErrorCode.STORE_UNAVAILABLE) && attempt < this.#settings.maxAttempts;
        if (!retry || (!keepGoing && this.#halt.signal.aborted)) throw error;
        await this.#pause(attempt, keepGoing);
      }
    }
  }

  /** The pause before call `attempt + 1`: `retryDelayMs` doubled per call, with jitter; cut short when the run stops. */
  async #pause(attempt: number, keepGoing = false): Promise<void> {
    const baseMs = Math.min(MAX_PAUSE_MS, this.#settings.retryDelayMs * 2 ** (attempt - 1));
    const ms = Math.round(baseMs * (0.5 + Math.random() / 2));
    if (ms === 0) return;
    await sleep(ms, undefined, keepGoing ? {} : { signal: this.#halt.signal }).catch(() => {});
  }
}

function contextOf<T>(task: Task<T>, lease: Lease, attempt: number): BackfillContext {
  return {
    key: task.key,
    idempotencyKey: task.storeKey,
    attempt,
    claims: lease.attempts,
    get signal() {
      return lease.signal; // made only if the handler asks for it
    },
  };
}

function mismatch<T>(task: Task<T>, name: string): IdempotencyError {
  return new IdempotencyError(
    ErrorCode.FINGERPRINT_MISMATCH,
    `[idem] [backfill] item ${JSON.stringify(task.key)} of ${name} has a record that another kind of operation wrote under the same store key; it was not processed.`,
    { key: task.storeKey },
  );
}

function notRecorded<T>(task: Task<T>, cause: unknown): IdempotencyError {
  const lost = isIdempotencyError(cause, ErrorCode.LEASE_LOST);
  const reason = cause instanceof Error ? cause.message.replace(/^(\[[^\]]+\] )+/, '') : String(cause);
  return new IdempotencyError(
    lost ? ErrorCode.LEASE_LOST : ErrorCode.STORE_UNAVAILABLE,
    `[idem] [backfill] item ${JSON.stringify(task.key)}: the handler ran but its completion was not recorded (${reason}); a later run may run it again, so its effect must be idempotent (use context.idempotencyKey).`,
    { cause, key: task.storeKey },
  );
}
