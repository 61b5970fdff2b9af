import type { PgPoolLike } from './postgres-store.js';

/** How a kind of operation runs: several items as one statement, or one item on its own. */
export interface BatchRunner<I, R> {
  /**
   * Runs `items` (two or more, distinct `keyOf`) as one statement. Answers item by item, in the
   * order given; `undefined` sends that item to `one`. Throwing sends every item to `one`.
   */
  many(pool: PgPoolLike, items: readonly I[]): Promise<(R | undefined)[]>;
  /** Runs one item with the statement of the unbatched path; its answer or error is its caller's. */
  one(pool: PgPoolLike, item: I): Promise<R>;
  /** What may appear only once in a batch (one statement cannot change one row twice). */
  keyOf(item: I): string;
}

/** One caller waiting in the queue. */
interface Waiting<I, R> {
  pool: PgPoolLike;
  item: I;
  resolve(answer: R): void;
  reject(error: unknown): void;
}

/** The most items one statement carries; more wait for the next flush. */
const MAX_BATCH_ITEMS = 100;

/**
 * Gathers the calls of one operation that arrive in the same turn of the event loop and sends
 * them as one statement: one round trip, one transaction and one WAL flush instead of one each.
 * Each flush sends what is queued; a second flush may start while the first is still running.
 * A lone call waits one turn and runs the plain statement.
 *
 * Each caller gets its own answer. When the batched statement fails (a deadlock between two
 * batches, a bad item, a timeout), every item runs again on its own, so one item's error never
 * reaches another caller and never turns into a false success. Mostly nothing of the batch was
 * committed; when it was and only its answer was lost (a client-side timeout), the single
 * statements find their own work done: a claim sees its own token, and a refused completion is
 * found stored under its token by the engine's check.
 */
export class StatementBatch<I, R> {
  readonly #runner: BatchRunner<I, R>;
  #queue: Waiting<I, R>[] = [];
  #scheduled = false;

  constructor(runner: BatchRunner<I, R>) {
    this.#runner = runner;
  }

  /** Queues `item` for the next flush and resolves with its own answer. */
  add(pool: PgPoolLike, item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ pool, item, resolve, reject });
      if (this.#scheduled) return;
      this.#scheduled = true;
      setImmediate(() => this.#flush());
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const queued = this.#queue;
    this.#queue = [];
    const batch: Waiting<I, R>[] = [];
    const keys = new Set<string>();
    for (const waiting of queued) {
      const key = this.#runner.keyOf(waiting.item);
      if (keys.has(key) || waiting.pool !== queued[0]?.pool) {
        // Waiting a turn would queue every duplicate of a hot key behind the one before it.
        this.#runOne(waiting);
      } else if (batch.length === MAX_BATCH_ITEMS) {
        this.#queue.push(waiting);
      } else {
        keys.add(key);
        batch.push(waiting);
      }
    }
    if (this.#queue.length > 0 && !this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#flush());
    }
    if (batch.length === 1) this.#runOne(batch[0] as Waiting<I, R>);
    else if (batch.length > 1) void this.#runMany(batch);
  }

  async #runMany(batch: Waiting<I, R>[]): Promise<void> {
    const pool = (batch[0] as Waiting<I, R>).pool;
    let answers: (R | undefined)[];
    try {
      answers = await this.#runner.many(
        pool,
        batch.map((waiting) => waiting.item),
      );
    } catch {
      for (const waiting of batch) this.#runOne(waiting);
      return;
    }
    batch.forEach((waiting, i) => {
      const answer = answers[i];
      if (answer === undefined) this.#runOne(waiting);
      else waiting.resolve(answer);
    });
  }

  #runOne(waiting: Waiting<I, R>): void {
    this.#runner.one(waiting.pool, waiting.item).then(waiting.resolve, waiting.reject);
  }
}
