/**
 * Group commit for the SQLite store: the writes that arrive in one turn of the event loop are
 * committed together, in one `BEGIN IMMEDIATE ... COMMIT`, on `setImmediate`. Each commit writes
 * its WAL frames (and with `synchronous = FULL` syncs the file) once, so concurrent callers share
 * that cost instead of paying it per write; a lone write waits one turn for its batch.
 */

/** The part of a better-sqlite3 `Database` a batch needs. */
export interface BatchDatabaseLike {
  transaction<A extends unknown[], R>(fn: (...args: A) => R): { immediate(...args: A): R };
  /** True while a transaction is open; when missing, any failed write fails its whole batch. */
  readonly inTransaction?: boolean;
}

interface Queued {
  /** The write, run inside the batch's transaction, in arrival order. */
  write(): unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  /** Set by the transaction: what `write` returned or threw. */
  failed: boolean;
  outcome: unknown;
}

/** Writes queued for one transaction, flushed on `setImmediate` or by `flush()`. */
export class WriteBatch {
  readonly #db: BatchDatabaseLike;
  readonly #commit: (items: Queued[]) => void;
  #queue: Queued[] = [];

  constructor(db: BatchDatabaseLike) {
    this.#db = db;
    const commit = db.transaction((items: Queued[]) => {
      for (const item of items) this.#attempt(item);
    });
    this.#commit = (items) => commit.immediate(items);
  }

  /**
   * Queues `write` (synchronous statements) for the next batch: resolves with what it returned
   * once the batch has committed, rejects with what it threw (that write alone), or with the
   * error of the batch's BEGIN or COMMIT (every write of the batch, none of them applied).
   */
  add<T>(write: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const item: Queued = {
        write,
        resolve: resolve as (value: unknown) => void,
        reject,
        failed: false,
        outcome: undefined,
      };
      if (this.#queue.push(item) === 1) setImmediate(this.flush);
    });
  }

  /** Commits what is queued now, and settles it; nothing queued, nothing done. */
  readonly flush = (): void => {
    const items = this.#queue;
    if (items.length === 0) return;
    this.#queue = [];
    try {
      this.#commit(items);
    } catch (error) {
      for (const item of items) item.reject(error);
      return;
    }
    // Only now, after COMMIT: a caller never learns of a write that is not stored.
    for (const item of items) {
      if (item.failed) item.reject(item.outcome);
      else item.resolve(item.outcome);
    }
  };

  /**
   * Runs one write. A statement that fails is undone alone by SQLite and the transaction goes on,
   * so the error is that write's only; but after some errors (SQLITE_FULL, SQLITE_IOERR,
   * SQLITE_NOMEM) SQLite rolls the whole transaction back, and the writes after it would run in
   * autocommit: then the error ends the batch, and every write of it fails.
   */
  #attempt(item: Queued): void {
    try {
      item.outcome = item.write();
    } catch (error) {
      if (this.#db.inTransaction !== true) throw error;
      item.failed = true;
      item.outcome = error;
    }
  }
}
