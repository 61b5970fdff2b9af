/**
 * Short write transactions on a better-sqlite3 connection that wait for the write lock without
 * blocking the event loop. SQLite's own busy handler sleeps inside the call: while a transaction
 * of this process holds the lock across an `await` (the caller's, on another handle), a BEGIN
 * here would sleep the whole process, that transaction could not finish, and the BEGIN would fail
 * after the timeout. So each try runs with the busy timeout at 0, and the waiting is done here.
 */
import { beginImmediate } from '../../store-kit/sqlite-write-lock.js';

/** The part of a better-sqlite3 `Database` the outbox uses: a better-sqlite3 (v12) `Database` fits as it is. */
export interface SqliteOutboxDatabaseLike {
  prepare(source: string): SqliteOutboxStatementLike;
  exec(source: string): unknown;
  /** Reads or sets a pragma; `{ simple: true }` returns the first column of the first row. */
  pragma(source: string, options?: { simple?: boolean }): unknown;
  /** True while a transaction is open on the connection. */
  readonly inTransaction: boolean;
}

/** The part of a better-sqlite3 `Statement` the outbox uses. */
export interface SqliteOutboxStatementLike {
  run(...params: unknown[]): { changes: number };
  all(...params: unknown[]): unknown[];
  get(...params: unknown[]): unknown;
}

/**
 * Runs `body` (synchronous statements, so nothing else runs on `db` meanwhile) in a `BEGIN
 * IMMEDIATE` transaction, committed when it returns, rolled back when it throws. Waits for the
 * write lock up to the connection's busy timeout, and while the caller's own transaction is open
 * on `db`, then fails with an error whose code is `SQLITE_BUSY`.
 */
export async function writeTransaction<T>(db: SqliteOutboxDatabaseLike, body: () => T): Promise<T> {
  await beginWriting(db);
  try {
    const result = body();
    db.exec('COMMIT');
    return result;
  } catch (error) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

async function beginWriting(db: SqliteOutboxDatabaseLike): Promise<void> {
  // A transaction open on this very connection is the caller's (ours never span an await).
  const lock = await beginImmediate(db, { waitOutOwnTransaction: true });
  if (lock.began) return;
  throw Object.assign(
    new Error(
      lock.inTransaction
        ? `a transaction of the caller's stayed open on the outbox's connection for longer than its busy timeout (${lock.budgetMs} ms)`
        : `another connection held the database's write lock for longer than this connection's busy timeout (${lock.budgetMs} ms)`,
    ),
    { code: 'SQLITE_BUSY' },
  );
}
