/**
 * `BEGIN IMMEDIATE` on a better-sqlite3 connection, waiting for the write lock without blocking
 * the event loop. SQLite's own busy handler sleeps inside the call: while a transaction of this
 * process holds the lock across an `await` (on another handle), a BEGIN here would sleep the whole
 * process, that transaction could not finish, and the BEGIN would fail after the timeout. So each
 * try runs with the busy timeout at 0, and the waiting is done here, between tries, up to the
 * connection's own busy timeout. Used by the atomic SQL steps and the SQLite outbox.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** The part of a better-sqlite3 `Database` this needs. */
export interface SqliteLockingDatabaseLike {
  exec(source: string): unknown;
  /** Reads or sets a pragma; `{ simple: true }` returns the first column of the first row. */
  pragma(source: string, options?: { simple?: boolean }): unknown;
  /** True while a transaction is open on the connection. */
  readonly inTransaction: boolean;
}

/** How a try at the lock ended: begun, or given up after `budgetMs` (the connection's busy timeout). */
export type WriteLockResult = { began: true } | { began: false; budgetMs: number; inTransaction: boolean };

/** The longest pause between two tries at the write lock, in ms. */
const MAX_BUSY_PAUSE_MS = 50;

/**
 * Begins a `BEGIN IMMEDIATE` transaction on `db`, trying again (1 ms, doubling to 50 ms) while
 * another connection holds the write lock, or, with `waitOutOwnTransaction`, while a transaction
 * of the caller's is open on `db` itself; gives up after the connection's busy timeout. Errors
 * other than `SQLITE_BUSY` are thrown as they are.
 */
export async function beginImmediate(
  db: SqliteLockingDatabaseLike,
  options: { waitOutOwnTransaction?: boolean } = {},
): Promise<WriteLockResult> {
  const budgetMs = Number(db.pragma('busy_timeout', { simple: true }));
  const deadline = Date.now() + budgetMs;
  for (let pauseMs = 1; ; pauseMs = Math.min(pauseMs * 2, MAX_BUSY_PAUSE_MS)) {
    const ownOpen = options.waitOutOwnTransaction === true && db.inTransaction;
    if (!ownOpen && tryBegin(db, budgetMs)) return { began: true };
    const leftMs = deadline - Date.now();
    if (leftMs <= 0) return { began: false, budgetMs, inTransaction: ownOpen };
    await sleep(Math.min(pauseMs, leftMs));
  }
}

/** One try at `BEGIN IMMEDIATE` with no busy wait: false when another connection holds the write lock. */
function tryBegin(db: SqliteLockingDatabaseLike, busyTimeoutMs: number): boolean {
  db.pragma('busy_timeout = 0');
  try {
    db.exec('BEGIN IMMEDIATE');
    return true;
  } catch (error) {
    if (String((error as { code?: unknown } | null)?.code).startsWith('SQLITE_BUSY')) return false;
    throw error;
  } finally {
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
  }
}
