import { asBuffer } from '../../store-kit/as-buffer.js';
import { checkIdentifier } from '../../store-kit/identifier.js';
import { postgresMisconfiguration } from '../../stores/postgres/errors.js';
import { oneConnection, pooledConnections } from './connections.js';
import { type PostgresStepStatements, postgresStepStatements } from './postgres-steps-sql.js';
import { SqlStepDatabase, type StepDialect } from './sql-step-database.js';
import { type DriverErrors, type StepDatabase, statement, stepMisuse } from './step-database.js';

/** What a `pg` query resolves to, as far as the steps read it. */
export interface PgResultLike {
  rows: unknown[];
  rowCount: number | null;
}

/**
 * The part of a `pg` connection (a `Client`, or a `PoolClient` checked out of a pool) or pool the
 * steps use. A call without values must accept several statements separated by `;` (the table's
 * creation and BEGIN are sent that way), as `pg`'s simple protocol does.
 */
export interface PgConnectionLike {
  /** Runs a statement; with a `name`, `pg` prepares it once per connection and reuses the plan. */
  query(config: { name?: string; text: string; values?: unknown[] }): Promise<PgResultLike>;
  /** Runs a statement, or several separated by `;` when no values are given. */
  query(text: string, values?: unknown[]): Promise<PgResultLike>;
}

/** A connection checked out of a pool: `release` gives it back (`release(true)` destroys it). */
export interface PgPooledConnectionLike extends PgConnectionLike {
  release(destroy?: Error | boolean): void;
}

/** A pool, such as `pg.Pool`: each step's transaction runs on a connection checked out of it. */
export interface PgConnectionPoolLike extends PgConnectionLike {
  connect(): Promise<PgPooledConnectionLike>;
}

/**
 * What a step's `fn` receives from `postgresSteps(given)`: a connection checked out of `given`
 * when it is a pool (`pg.PoolClient` for a `pg.Pool`), else `given` itself.
 */
export type PgTransactionOf<P> = P extends { release(...args: never[]): unknown }
  ? P
  : P extends { connect: { (): Promise<infer C>; (callback: never): void } }
    ? C
    : P extends { connect(): Promise<infer C> }
      ? C
      : P;

export interface PostgresStepsOptions {
  /**
   * The table of step rows: letters, digits and underscores, at most 50 characters, used as
   * written (quoted, so case is kept). Created on first use if missing, with an index on
   * `created_at_ms`. Default `idem_workflow_steps`.
   */
  table?: string;
  /** The table's schema, which must exist: letters, digits and underscores. Default: the `search_path`'s. */
  schema?: string;
}

const DIALECT = 'postgres';
const MAX_TABLE_LENGTH = 50; // leaves room for the `_created_idx` suffix within PostgreSQL's 63 bytes
const MAX_SCHEMA_LENGTH = 63;

const POSTGRES_ERRORS: DriverErrors = {
  dialect: DIALECT,
  // serialization_failure and deadlock_detected: the server rolled the transaction back.
  isRetryable: (error) => ['40001', '40P01'].includes(String((error as { code?: unknown } | null)?.code)),
  misconfiguration: postgresMisconfiguration,
};

/**
 * Atomic workflow steps in PostgreSQL, through `pg`: `ctx.transaction(name, steps, fn)` runs `fn`
 * on one connection inside a transaction that also writes the step's row, so the step's SQL
 * writes commit exactly once with its record.
 *
 * `poolOrClient` is a `pg.Pool` (each transaction checks out a connection, and reads run on the
 * pool), or one connection: a `pg.Client` or a `PoolClient` you checked out, recognised by its
 * `processID` or `release`. One connection runs one transaction at a time, so the steps queue
 * their transactions and reads on it; a `runOnce` inside another's `fn` on the same connection
 * would wait for itself, and throws `INVALID_OPTIONS` instead.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { postgresSteps } from 'idem/workflow';
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const steps = postgresSteps(pool, { table: 'order_steps' });
 * // in a workflow:
 * await ctx.transaction('reserve', steps, async (tx) => {
 *   await tx.query('UPDATE stock SET held = held + 1 WHERE sku = $1', [input.sku]);
 *   return 1;
 * });
 * ```
 */
export function postgresSteps<P extends PgConnectionLike>(
  poolOrClient: P,
  options: PostgresStepsOptions = {},
): StepDatabase<PgTransactionOf<P>> {
  const table = options.table ?? 'idem_workflow_steps';
  checkIdentifier(`${DIALECT} steps`, 'table', table, MAX_TABLE_LENGTH);
  if (options.schema !== undefined) checkIdentifier(`${DIALECT} steps`, 'schema', options.schema, MAX_SCHEMA_LENGTH);
  const sql = postgresStepStatements(table, options.schema);
  const source = isPool(poolOrClient)
    ? pooledConnections<PgPooledConnectionLike, PgConnectionLike>(
        poolOrClient,
        () => statement('check out a connection from the pool', () => poolOrClient.connect()),
        (connection, destroy) => connection.release(destroy),
      )
    : oneConnection<PgConnectionLike>(poolOrClient, () =>
        stepMisuse(
          DIALECT,
          'runOnce was called inside the fn of another runOnce on the same connection, and would wait for it forever: run the steps one after the other, or give postgresSteps a pool.',
        ),
      );
  return new SqlStepDatabase(postgresDialect(sql), source) as unknown as StepDatabase<PgTransactionOf<P>>;
}

/** A pool hands out connections; a connection (a `pg.Client`, a checked-out `PoolClient`) does not. */
function isPool(given: PgConnectionLike): given is PgConnectionPoolLike {
  const candidate = given as { connect?: unknown; release?: unknown };
  return typeof candidate.connect === 'function' && typeof candidate.release !== 'function' && !('processID' in given);
}

/** The steps' statements on `pg`. */
function postgresDialect(sql: PostgresStepStatements): StepDialect<PgConnectionLike, PgConnectionLike> {
  return {
    errors: POSTGRES_ERRORS,
    async createTable(db) {
      const exists = await statement('look for the steps table', () =>
        db.query({ text: sql.exists, values: [sql.table, sql.index] }),
      );
      if ((exists.rows[0] as { ready?: boolean } | undefined)?.ready === true) return;
      await statement('create the steps table', () => db.query(sql.migrate));
    },
    async begin(client, step) {
      await statement('begin the step transaction', () => client.query(sql.begin(step)));
    },
    async select(db, step) {
      const result = await statement('read the step', () =>
        db.query({ ...sql.select, values: [step.runId, step.stepIndex] }),
      );
      const row = result.rows[0] as { name: string; data: Buffer } | undefined;
      return row && { name: row.name, data: row.data };
    },
    async insert(client, step, data, nowMs) {
      const values = [step.runId, step.stepIndex, step.name, asBuffer(data), nowMs];
      await statement('record the step', () => client.query({ ...sql.insert, values }));
    },
    async commit(client) {
      await statement('commit the step transaction', () => client.query('COMMIT'));
    },
    async rollback(client) {
      await client.query('ROLLBACK');
    },
    // unique_violation: another holder committed the step's row first.
    isUniqueViolation: (error) => (error as { code?: unknown } | null)?.code === '23505',
    inTransaction(client) {
      // pg 8.12+ tells whether a transaction is open ('T', or 'E' once a statement failed in it).
      const status = (client as { getTransactionStatus?: () => string | null }).getTransactionStatus?.();
      return status !== 'I';
    },
    async sweep(db, beforeMs, limit) {
      const result = await statement('sweep the step rows', () =>
        db.query({ ...sql.sweep, values: [beforeMs, limit] }),
      );
      return result.rowCount ?? 0;
    },
  };
}
