import { asBuffer } from '../../store-kit/as-buffer.js';
import { checkIdentifier } from '../../store-kit/identifier.js';
import { mysqlMisconfiguration } from '../../stores/mysql/errors.js';
import { oneConnection, pooledConnections } from './connections.js';
import { SqlStepDatabase, type StepDialect } from './sql-step-database.js';
import { type DriverErrors, type StepDatabase, type StepRef, statement, stepMisuse } from './step-database.js';

/** What the steps pass to `query`: a subset of `mysql2`'s `QueryOptions`. */
export interface MysqlStepQuery {
  sql: string;
  /** Values for the `?` placeholders in `sql`. */
  values?: unknown[];
  /** Always false: the steps read rows as flat objects, whatever the pool's default. */
  rowsAsArray: boolean;
  /** Always false, for the same reason. */
  nestTables: boolean;
}

/**
 * The part of a `mysql2/promise` connection (a `Connection`, or a `PoolConnection` checked out of
 * a pool) or pool the steps use. `query` resolves to `[rows, fields]` for a SELECT and to
 * `[{ affectedRows }, undefined]` for a change.
 */
export interface MysqlConnectionLike {
  query(options: MysqlStepQuery): Promise<[unknown, unknown]>;
}

/** A connection checked out of a pool: `release` gives it back, `destroy` closes it instead. */
export interface MysqlPooledConnectionLike extends MysqlConnectionLike {
  release(): void;
  destroy(): void;
}

/** A pool, such as `mysql2/promise`'s: each step's transaction runs on a connection checked out of it. */
export interface MysqlConnectionPoolLike extends MysqlConnectionLike {
  getConnection(): Promise<MysqlPooledConnectionLike>;
}

/**
 * What a step's `fn` receives from `mysqlSteps(given)`: a connection checked out of `given` when
 * it is a pool (`PoolConnection` for a `mysql2/promise` `Pool`), else `given` itself.
 */
export type MysqlTransactionOf<P> = P extends { getConnection(): Promise<infer C> } ? C : P;

export interface MysqlStepsOptions {
  /**
   * The table of step rows, in the connection's database: letters, digits and underscores, at
   * most 64 characters. Created on first use if missing, with an index on `created_at_ms`.
   * Default `idem_workflow_steps`.
   */
  table?: string;
}

const DIALECT = 'mysql';
const MAX_TABLE_LENGTH = 64;
/** ER_DUP_ENTRY: another holder committed the step's row first. */
const ER_DUP_ENTRY = 1062;
/** ER_LOCK_DEADLOCK: the server rolled the whole transaction back. */
const ER_LOCK_DEADLOCK = 1213;

function errnoOf(error: unknown): unknown {
  return (error as { errno?: unknown } | null)?.errno;
}

const MYSQL_ERRORS: DriverErrors = {
  dialect: DIALECT,
  isRetryable: (error) => errnoOf(error) === ER_LOCK_DEADLOCK,
  misconfiguration: mysqlMisconfiguration,
};

/**
 * Atomic workflow steps in MySQL 8 or MariaDB 10.5+, through `mysql2/promise`:
 * `ctx.transaction(name, steps, fn)` runs `fn` on one connection inside a transaction that also
 * writes the step's row, so the step's SQL writes commit exactly once with its record.
 *
 * `pool` is a `mysql2/promise` `Pool` (each transaction checks out a connection, and reads run on
 * the pool), or one `Connection` (or a `PoolConnection` you checked out), on which the steps queue
 * their transactions and reads: one connection runs one transaction at a time. A `runOnce` inside
 * another's `fn` on the same connection would wait for itself, and throws `INVALID_OPTIONS` instead.
 *
 * Two holders of one step may both run `fn`; the second's INSERT of the step row waits for the
 * first's commit and fails with a duplicate key, which rolls the second's writes back. A deadlock
 * between them (InnoDB picks a victim) runs the victim's transaction again, up to 5 times in all.
 * Data is sent as hex in the statement text, so the largest is about half of the server's
 * `max_allowed_packet`.
 *
 * @example
 * ```ts
 * import mysql from 'mysql2/promise';
 * import { mysqlSteps } from 'idem/workflow';
 *
 * const pool = mysql.createPool({ uri: process.env.MYSQL_URL });
 * const steps = mysqlSteps(pool, { table: 'order_steps' });
 * // in a workflow:
 * await ctx.transaction('reserve', steps, async (tx) => {
 *   await tx.query('UPDATE stock SET held = held + 1 WHERE sku = ?', [input.sku]);
 *   return 1;
 * });
 * ```
 */
export function mysqlSteps<P extends MysqlConnectionLike>(
  pool: P,
  options: MysqlStepsOptions = {},
): StepDatabase<MysqlTransactionOf<P>> {
  const table = options.table ?? 'idem_workflow_steps';
  checkIdentifier(`${DIALECT} steps`, 'table', table, MAX_TABLE_LENGTH);
  const source = isPool(pool)
    ? pooledConnections<MysqlPooledConnectionLike, MysqlConnectionLike>(
        pool,
        () => statement('check out a connection from the pool', () => pool.getConnection()),
        (connection, destroy) => (destroy ? connection.destroy() : connection.release()),
      )
    : oneConnection<MysqlConnectionLike>(pool, () =>
        stepMisuse(
          DIALECT,
          'runOnce was called inside the fn of another runOnce on the same connection, and would wait for it forever: run the steps one after the other, or give mysqlSteps a pool.',
        ),
      );
  return new SqlStepDatabase(mysqlDialect(table), source) as unknown as StepDatabase<MysqlTransactionOf<P>>;
}

function isPool(given: MysqlConnectionLike): given is MysqlConnectionPoolLike {
  return typeof (given as { getConnection?: unknown }).getConnection === 'function';
}

/** Runs `sql` with `values` as flat rows; resolves to the rows, or to the result of a change. */
async function run(db: MysqlConnectionLike, operation: string, sql: string, values?: unknown[]): Promise<unknown> {
  const [result] = await statement(operation, () => db.query({ sql, values, rowsAsArray: false, nestTables: false }));
  return result;
}

/** The steps' statements on `mysql2`, for `table` (a validated identifier, quoted here). */
function mysqlDialect(table: string): StepDialect<MysqlConnectionLike, MysqlConnectionLike> {
  const t = `\`${table}\``;
  return {
    errors: MYSQL_ERRORS,
    async createTable(db) {
      /*
       * Looks for the table first, with no DDL, so a user without the CREATE privilege can use a
       * table an operator created (MySQL checks that privilege even for CREATE TABLE IF NOT EXISTS).
       * ? the bare table name, in the connection's database. Returns one row if it exists.
       */
      const found = await run(
        db,
        'look for the steps table',
        'SELECT 1 AS present FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
        [table],
      );
      if ((found as unknown[]).length > 0) return;
      /*
       * Creates the table with its index. No GET_LOCK is needed: the server takes an exclusive
       * metadata lock on the name, so of many processes running this at once one creates the table
       * and the others find it there. `run_id` is VARBINARY: compared byte for byte, whatever
       * the server's default collation. No parameters. Returns nothing.
       */
      await run(
        db,
        'create the steps table',
        `CREATE TABLE IF NOT EXISTS ${t} (
          run_id VARBINARY(255) NOT NULL,
          step_index INT NOT NULL,
          name TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
          data LONGBLOB NOT NULL,
          created_at_ms BIGINT NOT NULL,
          PRIMARY KEY (run_id, step_index),
          KEY created_at_ms_idx (created_at_ms)
        ) ENGINE = InnoDB`,
      );
    },
    async begin(connection) {
      await run(connection, 'begin the step transaction', 'START TRANSACTION');
    },
    async select(db, step: StepRef) {
      /*
       * The step's row. Inside the transaction, the first read fixes its snapshot (REPEATABLE READ).
       * ? run id, ? step index. Returns zero or one row: name, data.
       */
      const rows = (await run(db, 'read the step', `SELECT name, data FROM ${t} WHERE run_id = ? AND step_index = ?`, [
        step.runId,
        step.stepIndex,
      ])) as { name: string; data: Buffer }[];
      const row = rows[0];
      return row && { name: row.name, data: row.data };
    },
    async insert(connection, step, data, nowMs) {
      /*
       * Records the step in the transaction of its writes. A concurrent holder's uncommitted row
       * makes it wait, then fail with ER_DUP_ENTRY once that one commits.
       * ? run id, ? step index, ? name, ? data, ? now (ms). Returns the change.
       */
      await run(
        connection,
        'record the step',
        `INSERT INTO ${t} (run_id, step_index, name, data, created_at_ms) VALUES (?, ?, ?, ?, ?)`,
        [step.runId, step.stepIndex, step.name, asBuffer(data), nowMs],
      );
    },
    async commit(connection) {
      await run(connection, 'commit the step transaction', 'COMMIT');
    },
    async rollback(connection) {
      await run(connection, 'roll the step transaction back', 'ROLLBACK');
    },
    isUniqueViolation: (error) => errnoOf(error) === ER_DUP_ENTRY,
    async sweep(db, beforeMs, limit) {
      /*
       * Deletes up to ? rows created before ?, oldest first. The ORDER BY names the primary key
       * too, so statement-based replication deletes the same rows on replicas.
       * ? before (ms), ? limit. Returns the change: affectedRows, how many were deleted.
       */
      const result = await run(
        db,
        'sweep the step rows',
        `DELETE FROM ${t} WHERE created_at_ms < ? ORDER BY created_at_ms, run_id, step_index LIMIT ?`,
        [beforeMs, limit],
      );
      return (result as { affectedRows: number }).affectedRows;
    },
  };
}
