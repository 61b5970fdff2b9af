/**
 * A background loop that keeps a store's size bounded: every `everyMs` (jittered) it calls
 * `AdminStore.sweep` in batches until the expired records are gone or the round's budget is spent.
 * It needs nothing from the store but `sweep`, so the core still imports no store.
 */

import { ErrorCode, IdempotencyError } from './errors.js';
import { MAX_TIMER_MS, wholeOption } from './option-checks.js';
import type { AdminStore } from './store.js';

export interface SweepResult {
  /** Records the round deleted, over all its batches. */
  deleted: number;
  /** `sweep` calls the round made (at least 1; at most `maxBatchesPerRound`). */
  batches: number;
  /** How long the round took, in ms (wall clock). */
  elapsedMs: number;
}

export interface SweeperOptions {
  /**
   * Mean time between two rounds, in ms: each wait is drawn from 80% to 120% of it, and the first
   * from 0 to 100%, so processes started together do not sweep together. 1 to 2^31 - 1. Default
   * 60000.
   */
  everyMs?: number;
  /** Most records one `sweep` call deletes (its `limit`): one short statement at a time. At least 1. Default 1000. */
  batch?: number;
  /**
   * Most `sweep` calls in one round, so that a large backlog is worked off over several rounds
   * instead of holding the store in one: a round deletes at most `batch * maxBatchesPerRound`
   * records. At least 1. Default 10.
   */
  maxBatchesPerRound?: number;
  /** Stops the sweeper (as `stop()`) when aborted. */
  signal?: AbortSignal;
  /**
   * Called after each round that completed (timer or `sweepNow`), for telemetry: count
   * `deleted` per unit of time for the sweep rate. A throw from it goes to `onError`. Default: none.
   */
  onSweep?: (result: SweepResult) => void;
  /**
   * Called with the error of a timed round that failed (store unreachable): the sweeper goes on
   * with the next round as usual. `sweepNow()` rejects with its error instead. Default: ignored.
   */
  onError?: (error: unknown) => void;
  /** The clock that decides what has expired, in ms since the epoch. Default `Date.now`. */
  now?: () => number;
}

export interface Sweeper {
  /**
   * Stops the timer and resolves once the round in flight (if any) has ended; that round stops
   * after its current batch. Safe to call more than once.
   */
  stop(): Promise<void>;
  /**
   * Runs one round now, after the round in flight if there is one (never two at once), and
   * resolves with the records it deleted; rejects with the store's error. After `stop()`,
   * resolves 0 without sweeping.
   */
  sweepNow(): Promise<number>;
}

/**
 * Starts sweeping `store`'s expired records in the background. The timer is `unref()`ed, so the
 * sweeper never keeps a process alive. Run one in every process if you like: each `sweep` call
 * deletes its own batch (PostgreSQL skips rows another sweep holds), so sweepers in many processes
 * share the work rather than wait on each other. Refuses (`INVALID_OPTIONS`) a store without
 * `sweep`: such a store drops expired records by itself and needs no sweeper.
 *
 * @example
 * ```ts
 * import { startSweeper } from 'idem';
 * import { PostgresStore } from 'idem/postgres';
 * const store = new PostgresStore({ url: process.env.DATABASE_URL });
 * const sweeper = startSweeper(store, {
 *   onSweep: ({ deleted }) => sweptCounter.add(deleted),
 *   onError: (error) => console.error('idem sweeper:', error),
 * });
 * process.once('SIGTERM', () => void sweeper.stop());
 * ```
 */
export function startSweeper(store: AdminStore, options: SweeperOptions = {}): Sweeper {
  if (typeof store?.sweep !== 'function') {
    throw invalid(
      `store ${JSON.stringify(store?.name ?? typeof store)} has no sweep(): a store without one drops expired records itself (a TTL, as Redis and DynamoDB do) and treats them as absent meanwhile, so it needs no sweeper. If yours keeps them, give it sweep(nowMs, limit) (see AdminStore).`,
    );
  }
  return new SweepLoop(store as Required<Pick<AdminStore, 'sweep'>>, options);
}

type Phase = 'running' | 'stopped';

class SweepLoop implements Sweeper {
  readonly #store: Required<Pick<AdminStore, 'sweep'>>;
  readonly #everyMs: number;
  readonly #batch: number;
  readonly #maxBatches: number;
  readonly #signal: AbortSignal | undefined;
  readonly #onSweep: SweeperOptions['onSweep'];
  readonly #onError: (error: unknown) => void;
  readonly #now: () => number;
  #phase: Phase = 'running';
  #timer: NodeJS.Timeout | undefined;
  /** The round in flight (or the last one): the next round starts after it, so rounds never overlap. */
  #tail: Promise<unknown> = Promise.resolve();
  readonly #onAbort = () => void this.stop();

  constructor(store: Required<Pick<AdminStore, 'sweep'>>, options: SweeperOptions) {
    this.#store = store;
    this.#everyMs = whole(options.everyMs ?? 60_000, 'everyMs', 1, MAX_TIMER_MS);
    this.#batch = whole(options.batch ?? 1000, 'batch', 1);
    this.#maxBatches = whole(options.maxBatchesPerRound ?? 10, 'maxBatchesPerRound', 1);
    for (const name of ['onSweep', 'onError', 'now'] as const) {
      if (options[name] !== undefined && typeof options[name] !== 'function') {
        throw invalid(`${name} must be a function, got ${typeof options[name]}.`);
      }
    }
    this.#onSweep = options.onSweep;
    this.#onError = options.onError ?? (() => {});
    this.#now = options.now ?? Date.now;
    this.#signal = options.signal;
    if (this.#signal?.aborted) {
      this.#phase = 'stopped';
      return;
    }
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#schedule(Math.random() * this.#everyMs);
  }

  async stop(): Promise<void> {
    this.#phase = 'stopped';
    clearTimeout(this.#timer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
    await this.#tail.catch(() => {});
  }

  sweepNow(): Promise<number> {
    return this.#enqueue();
  }

  #schedule(delayMs: number): void {
    if (this.#phase === 'stopped') return;
    this.#timer = setTimeout(() => {
      this.#enqueue()
        .catch((error: unknown) => this.#report(error))
        .finally(() => this.#schedule(this.#everyMs * (0.8 + 0.4 * Math.random())));
    }, delayMs);
    this.#timer.unref();
  }

  /** Chains a round after the one in flight. */
  #enqueue(): Promise<number> {
    const round = this.#tail.catch(() => {}).then(() => (this.#phase === 'stopped' ? 0 : this.#round()));
    this.#tail = round;
    return round;
  }

  async #round(): Promise<number> {
    const startedAtMs = Date.now();
    let deleted = 0;
    let batches = 0;
    // A batch that deleted fewer than it could found the end of the expired records.
    for (let last = this.#batch; last === this.#batch && batches < this.#maxBatches; ) {
      if (batches > 0 && this.#phase === 'stopped') break;
      last = await this.#store.sweep(this.#now(), this.#batch);
      deleted += last;
      batches += 1;
    }
    try {
      this.#onSweep?.({ deleted, batches, elapsedMs: Date.now() - startedAtMs });
    } catch (error) {
      this.#report(error);
    }
    return deleted;
  }

  #report(error: unknown): void {
    try {
      this.#onError(error);
    } catch {
      // A failing error handler must not end the loop.
    }
  }
}

function whole(value: number, name: string, min: number, max?: number): number {
  return wholeOption('[idem] [sweeper]', name, value, min, max);
}

function invalid(message: string): IdempotencyError {
  return new IdempotencyError(ErrorCode.INVALID_OPTIONS, `[idem] [sweeper] ${message}`);
}
