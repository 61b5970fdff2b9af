import { asBuffer } from '../../store-kit/as-buffer.js';
import { beginImmediate } from '../../store-kit/sqlite-write-lock.js';
import { oneConnection } from './connections.js';
import { SqlStepDatabase, type StepDialect } from './sql-step-database.js';
import {
  type DriverErrors,
  StatementFailed,
  type StepDatabase,
  type StepRef,
  statement,
  stepMisuse,
} from './step-database.js';

/** The part of a better-sqlite3 `Statement` the steps use. */
export interface SqliteStepStatementLike {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
}

/** The part of a better-sqlite3 `Database` the steps use: a better-sqlite3 (v12) `Database` fits as it is. */
export interface SqliteStepDatabaseLike {
  prepare(source: string): SqliteStepStatementLike;
  exec(source: string): unknown;
  /** Reads or sets a pragma; `{ simple: true }` returns the first column of the first row. */
  pragma(source: string, options?: { simple?: boolean }): unknown;
  /** True while a transaction is open on the connection. */
  readonly inTransaction: boolean;
}

export interface SqliteStepsOptions {
  /**
   * The table of step rows: letters, digits and underscores, up to 64, starting with a letter or
   * underscore (and not `sqlite_`). Created on first use if missing, with an index on
   * `created_at_ms`. Default `idem_workflow_steps`.
   */
  table?: string;
}

const DIALECT = 'sqlite';
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

const SQLITE_ERRORS: DriverErrors = {
  dialect: DIALECT,
  // BEGIN IMMEDIATE serializes the writers: no deadlock or serialization failure can end a step.
  isRetryable: () => false,
  misconfiguration: () => undefined,
};

/**
 * Atomic workflow steps in SQLite, through better-sqlite3: `ctx.transaction(name, steps, fn)` runs
 * `fn` inside a `BEGIN IMMEDIATE` transaction that also writes the step's row, so the step's SQL
 * writes commit exactly once with its record.
 *
 * better-sqlite3 is synchronous and has one connection, so `fn` gets `db` itself, and the
 * transaction stays open while `fn` awaits: any other write on `db` meanwhile (from elsewhere in
 * the program) joins it, and is rolled back with it if `fn` throws. Give the steps a connection of
 * their own to keep such writes apart. Inside `fn`, nest with `db.transaction()` (a SAVEPOINT),
 * never with BEGIN, COMMIT or ROLLBACK. The steps queue their transactions and reads on `db`: a
 * second `runOnce` waits for the first to commit, and one inside another's `fn` on the same `db`
 * would wait for itself, and throws `INVALID_OPTIONS` instead.
 *
 * Other connections to the file (other processes, or other `Database` handles in this one) wait
 * for the write lock up to the connection's busy timeout (better-sqlite3's `timeout`, 5000 ms
 * by default), without blocking the event loop: the steps try for the lock and pause between
 * tries, so the holder's `fn` can go on meanwhile.
 *
 * @example
 * ```ts
 * import Database from 'better-sqlite3';
 * import { sqliteSteps } from 'idem/workflow';
 *
 * const db = new Database('./app.db', { timeout: 5000 });
 * db.pragma('journal_mode = WAL');
 * const steps = sqliteSteps(db);
 * // in a workflow:
 * await ctx.transaction('reserve', steps, async (tx) => {
 *   tx.prepare('UPDATE stock SET held = held + 1 WHERE sku = ?').run(input.sku);
 *   return 1;
 * });
 * ```
 */
export function sqliteSteps<D extends SqliteStepDatabaseLike>(
  db: D,
  options: SqliteStepsOptions = {},
): StepDatabase<D> {
  const table = options.table ?? 'idem_workflow_steps';
  if (!TABLE_NAME.test(table) || table.toLowerCase().startsWith('sqlite_')) {
    throw stepMisuse(
      DIALECT,
      `the table name ${JSON.stringify(table)} is not allowed: use 1 to 64 letters, digits and underscores, starting with a letter or underscore (and not with "sqlite_").`,
    );
  }
  const source = oneConnection<SqliteStepDatabaseLike>(db, () =>
    stepMisuse(
      DIALECT,
      'runOnce was called inside the fn of another runOnce on the same database, and would wait for it forever: run the steps one after the other.',
    ),
  );
  return new SqlStepDatabase(sqliteDialect(table), source) as unknown as StepDatabase<D>;
}

/** The prepared statements, once the table exists. */
interface Prepared {
  select: SqliteStepStatementLike;
  insert: SqliteStepStatementLike;
  sweep: SqliteStepStatementLike;
}

/** The steps' statements on better-sqlite3, for `table` (a validated identifier, quoted here). */
function sqliteDialect(table: string): StepDialect<SqliteStepDatabaseLike, SqliteStepDatabaseLike> {
  const t = `"${table}"`;
  let prepared: Prepared | undefined;
  const statements = (): Prepared => {
    if (prepared === undefined) throw new Error('the steps table was not created first');
    return prepared;
  };
  return {
    errors: SQLITE_ERRORS,
    async createTable(db) {
      await writeWith(db, 'create the steps table', () => {
        /*
         * The table and its index, if missing. Times are ms since the epoch.
         * No parameters. Returns nothing.
         */
        db.exec(`
          CREATE TABLE IF NOT EXISTS ${t} (
            run_id TEXT NOT NULL,
            step_index INTEGER NOT NULL,
            name TEXT NOT NULL,
            data BLOB NOT NULL,
            created_at_ms INTEGER NOT NULL,
            PRIMARY KEY (run_id, step_index)
          );
          CREATE INDEX IF NOT EXISTS "${table}_created_at_ms" ON ${t} (created_at_ms);`);
      });
      prepared = await statement('prepare the step statements', () => ({
        /*
         * The step's row. ?1 run id, ?2 step index. Returns zero or one row: name, data.
         */
        select: db.prepare(`SELECT name, data FROM ${t} WHERE run_id = ? AND step_index = ?`),
        /*
         * Records the step, in the transaction of its writes.
         * ?1 run id, ?2 step index, ?3 name, ?4 data, ?5 now (ms). Returns changes: 1.
         */
        insert: db.prepare(`INSERT INTO ${t} (run_id, step_index, name, data, created_at_ms) VALUES (?, ?, ?, ?, ?)`),
        /*
         * Deletes up to ?2 rows created before ?1, oldest first.
         * ?1 before (ms), ?2 limit. Returns changes: how many were deleted.
         */
        sweep: db.prepare(
          `DELETE FROM ${t} WHERE rowid IN (SELECT rowid FROM ${t} WHERE created_at_ms < ? ORDER BY created_at_ms LIMIT ?)`,
        ),
      }));
    },
    begin: (db) => beginStep(db, 'begin the step transaction'),
    async select(_db, step: StepRef) {
      const row = await statement('read the step', () => statements().select.get(step.runId, step.stepIndex));
      const found = row as { name: string; data: Buffer } | undefined;
      return found && { name: found.name, data: found.data };
    },
    async insert(_db, step, data, nowMs) {
      await statement('record the step', () =>
        statements().insert.run(step.runId, step.stepIndex, step.name, asBuffer(data), nowMs),
      );
    },
    async commit(db) {
      await statement('commit the step transaction', () => db.exec('COMMIT'));
    },
    async rollback(db) {
      if (db.inTransaction) db.exec('ROLLBACK');
    },
    isUniqueViolation: (error) => (error as { code?: unknown } | null)?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY',
    inTransaction: (db) => db.inTransaction,
    async sweep(db, beforeMs, limit) {
      return writeWith(db, 'sweep the step rows', () => statements().sweep.run(beforeMs, limit).changes);
    },
  };
}

/** Runs `body` (synchronous writes) in a transaction of its own, begun as `beginImmediate` does. */
async function writeWith<T>(db: SqliteStepDatabaseLike, operation: string, body: () => T): Promise<T> {
  await beginStep(db, operation);
  try {
    const result = await statement(operation, body);
    db.exec('COMMIT');
    return result;
  } catch (error) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw error instanceof StatementFailed ? error : new StatementFailed(operation, error);
  }
}

/** `BEGIN IMMEDIATE` without blocking the event loop (store-kit's `beginImmediate`); a timeout fails `operation`. */
async function beginStep(db: SqliteStepDatabaseLike, operation: string): Promise<void> {
  const lock = await statement(operation, () => beginImmediate(db));
  if (lock.began) return;
  throw new StatementFailed(
    operation,
    new Error(
      `another connection held the database's write lock for longer than this connection's busy timeout (${lock.budgetMs} ms, SQLITE_BUSY): raise it (better-sqlite3's timeout option), or find the process that holds a long write transaction on this file`,
    ),
  );
}
