import type { Pool, PoolConfig } from 'pg';
import { ErrorCode, IdempotencyError, storeUnavailable } from '../../core/errors.js';
import type {
  ClaimInput,
  ClaimResult,
  CompleteInput,
  ExtendInput,
  IdempotencyRecord,
  ListOptions,
  ListPage,
  RecordState,
  Store,
} from '../../core/store.js';
import { existsSql, migrateSql, type PostgresTableNames, tableNames } from './migrations.js';
import { type PgRecordRow, type PostgresStatements, postgresStatements } from './sql.js';

/**
 * The part of a `pg` pool (or client) the store uses. A `pg.Pool` fits as it is; so does anything
 * with the same `query`, as long as a call without `values` accepts several statements separated by
 * semicolons (the migration sends its DDL that way).
 */
export interface PgPoolLike {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

export interface PostgresStoreOptions {
  /**
   * The pool to run queries on, or a function that returns it (called on first use, and again
   * only if it threw).
   * `close()` leaves this pool open: it belongs to the caller. Give either this or
   * `connectionString`. Its own timeouts apply; set `connectionTimeoutMillis` and
   * `query_timeout` on it so a down server fails fast instead of hanging.
   */
  pool?: PgPoolLike | (() => PgPoolLike | Promise<PgPoolLike>);
  /**
   * A `postgres://` URL: the store creates its own `pg` pool from it (on first use) and
   * `close()` ends that pool. Give either this or `pool`.
   */
  connectionString?: string;
  /**
   * Table that holds the records: letters, digits and underscores, at most 50 characters, used
   * as written (quoted, so case is kept). Created on first use if missing. Default `idem_records`.
   */
  table?: string;
  /**
   * Schema of the table: letters, digits and underscores, used as written. It must exist.
   * Default: none, the connection's `search_path` decides.
   */
  schema?: string;
  /** Own pool only: how long to wait for a connection to open, in ms. Default 5000. */
  connectTimeoutMs?: number;
  /**
   * Own pool only: how long one statement may run, in ms, enforced by the server
   * (`statement_timeout`) and by the client (`query_timeout`, which also covers a server that
   * stopped answering). Default 5000.
   */
  queryTimeoutMs?: number;
  /** Own pool only: the most connections it opens. Default 10. */
  maxConnections?: number;
}

const STORE_NAME = 'postgres';
const IDENTIFIER = /^[A-Za-z0-9_]+$/;
const MAX_TABLE_LENGTH = 50; // leaves room for the `_expires_idx` suffix within PostgreSQL's 63 bytes
const MAX_SCHEMA_LENGTH = 63;
/** How often a losing claim re-reads a record that changed under it before giving up. */
const MAX_CLAIM_ROUNDS = 10;

/**
 * A store in PostgreSQL, for many processes and machines that share one database. Each operation
 * is one statement: the claim is one `INSERT ... ON CONFLICT DO UPDATE ... WHERE`, plus a read of
 * the record when it loses. The table is created on first use (or by `migrate()`), safely from
 * many processes at once.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { PostgresStore } from 'idem/postgres';
 *
 * // Own pool, ended by close():
 * const store = new PostgresStore({ connectionString: process.env.DATABASE_URL });
 *
 * // Or share the application's pool (close() leaves it open):
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 5000 });
 * const shared = new PostgresStore({ pool, table: 'payments_idem' });
 * await shared.migrate();
 * ```
 */
export class PostgresStore implements Store {
  readonly name = STORE_NAME;
  #options: PostgresStoreOptions;
  #names: PostgresTableNames;
  #sql: PostgresStatements;
  #pool: Promise<PgPoolLike> | undefined;
  #ownPool: Pool | undefined;
  #migrated: Promise<void> | undefined;
  #closed: Promise<void> | undefined;

  constructor(options: PostgresStoreOptions) {
    if ((options.pool === undefined) === (options.connectionString === undefined)) {
      throw invalid('give either `pool` or `connectionString`, not both and not neither');
    }
    const table = options.table ?? 'idem_records';
    checkIdentifier('table', table, MAX_TABLE_LENGTH);
    if (options.schema !== undefined) checkIdentifier('schema', options.schema, MAX_SCHEMA_LENGTH);
    this.#options = options;
    this.#names = tableNames(table, options.schema);
    this.#sql = postgresStatements(this.#names.table);
  }

  /**
   * Creates the table and its index if they are missing. Runs by itself before the first
   * operation; call it at start-up to fail early. Safe to run from many processes at once.
   */
  async migrate(): Promise<void> {
    try {
      await this.#ready();
    } catch (error) {
      throw storeUnavailable(STORE_NAME, 'migrate', error);
    }
  }

  async claim(input: ClaimInput): Promise<ClaimResult> {
    try {
      const pool = await this.#ready();
      for (let round = 0; round < MAX_CLAIM_ROUNDS; round++) {
        // Read first: a key that is completed or held by someone else (every replay and every
        // concurrent duplicate) is answered by one plain read. The upsert below would take a row
        // lock even when its WHERE fails, and a lock costs a WAL flush at commit.
        const current = await pool.query(this.#sql.select, [input.key]);
        const currentRow = current.rows[0] as PgRecordRow | undefined;
        if (currentRow !== undefined) {
          const record = toRecord(currentRow);
          if (!claimable(record, input)) return { claimed: false, record };
        }
        const won = await pool.query(this.#sql.claim, [
          input.key,
          input.fingerprint,
          input.token,
          input.nowMs,
          input.leaseExpiresAtMs,
          input.expiresAtMs,
        ]);
        const row = won.rows[0] as PgRecordRow | undefined;
        if (row !== undefined) {
          const record = toRecord(row);
          return { claimed: true, takeover: record.attempts > 1, record };
        }
        // The conditional update did not apply: another caller won between the read and the
        // upsert. Its row is committed, so the read of the next round sees it.
      }
      throw new Error(`the record changed under ${MAX_CLAIM_ROUNDS} claims in a row`);
    } catch (error) {
      throw storeUnavailable(STORE_NAME, 'claim', error);
    }
  }

  async complete(input: CompleteInput): Promise<boolean> {
    return this.#changed('complete', this.#sql.complete, [
      input.key,
      input.token,
      asBuffer(input.result),
      input.nowMs,
      input.expiresAtMs,
    ]);
  }

  async release(key: string, token: string): Promise<boolean> {
    return this.#changed('release', this.#sql.release, [key, token]);
  }

  async extend(input: ExtendInput): Promise<boolean> {
    return this.#changed('extend', this.#sql.extend, [input.key, input.token, input.nowMs, input.leaseExpiresAtMs]);
  }

  async get(key: string, nowMs?: number): Promise<IdempotencyRecord | null> {
    try {
      const pool = await this.#ready();
      const { rows } =
        nowMs === undefined
          ? await pool.query(this.#sql.select, [key])
          : await pool.query(this.#sql.selectLive, [key, nowMs]);
      const row = rows[0] as PgRecordRow | undefined;
      return row === undefined ? null : toRecord(row);
    } catch (error) {
      throw storeUnavailable(STORE_NAME, 'get', error);
    }
  }

  async delete(key: string): Promise<boolean> {
    return this.#changed('delete', this.#sql.remove, [key]);
  }

  async list(options: ListOptions = {}): Promise<ListPage> {
    try {
      const pool = await this.#ready();
      const limit = options.limit ?? 100;
      const { rows } = await pool.query(this.#sql.list, [
        options.cursor ?? null,
        options.state ?? null,
        options.nowMs ?? null,
        limit + 1,
      ]);
      const records = (rows as PgRecordRow[]).slice(0, limit).map(toRecord);
      return { records, nextCursor: rows.length > limit ? records.at(-1)?.key : undefined };
    } catch (error) {
      throw storeUnavailable(STORE_NAME, 'list', error);
    }
  }

  async sweep(nowMs: number, limit = 1000): Promise<number> {
    try {
      const pool = await this.#ready();
      const { rowCount } = await pool.query(this.#sql.sweep, [nowMs, limit]);
      return rowCount ?? 0;
    } catch (error) {
      throw storeUnavailable(STORE_NAME, 'sweep', error);
    }
  }

  /** Ends the pool the store created from `connectionString`; a pool passed in stays open. */
  async close(): Promise<void> {
    this.#closed ??= this.#end();
    return this.#closed;
  }

  async #end(): Promise<void> {
    // Wait for a pool still being created, so it cannot be left open behind the store's back.
    await this.#pool?.catch(() => undefined);
    await this.#ownPool?.end();
  }

  /** Runs a statement that changes at most one row; true when it did. */
  async #changed(operation: string, text: string, values: unknown[]): Promise<boolean> {
    try {
      const pool = await this.#ready();
      const { rowCount } = await pool.query(text, values);
      return rowCount === 1;
    } catch (error) {
      throw storeUnavailable(STORE_NAME, operation, error);
    }
  }

  /** The pool, once the table exists. Throws STORE_CLOSED after `close()`. */
  async #ready(): Promise<PgPoolLike> {
    if (this.#closed !== undefined) {
      throw new IdempotencyError(
        ErrorCode.STORE_CLOSED,
        `[idem] [${STORE_NAME}] the store was closed; create a new PostgresStore.`,
      );
    }
    this.#pool ??= this.#openPool().catch((error: unknown) => {
      this.#pool = undefined;
      throw error;
    });
    const pool = await this.#pool;
    this.#migrated ??= this.#migrate(pool).catch((error: unknown) => {
      // Forget the failure so the next operation tries again once the server is back.
      this.#migrated = undefined;
      throw error;
    });
    await this.#migrated;
    return pool;
  }

  async #openPool(): Promise<PgPoolLike> {
    const { pool, connectionString } = this.#options;
    if (pool !== undefined) return typeof pool === 'function' ? pool() : pool;
    const { default: pg } = await import('pg');
    const queryTimeoutMs = this.#options.queryTimeoutMs ?? 5000;
    const config: PoolConfig = {
      connectionString,
      max: this.#options.maxConnections ?? 10,
      connectionTimeoutMillis: this.#options.connectTimeoutMs ?? 5000,
      query_timeout: queryTimeoutMs,
      statement_timeout: queryTimeoutMs,
      keepAlive: true,
    };
    const own = new pg.Pool(config);
    // An idle connection that drops (server restart) is reported on the pool; without a listener
    // the process would crash. The next query opens a fresh connection or reports the outage.
    own.on('error', () => {});
    this.#ownPool = own;
    return own;
  }

  async #migrate(pool: PgPoolLike): Promise<void> {
    const { rows } = await pool.query(existsSql, [this.#names.table, this.#names.expiresIndex]);
    if ((rows[0] as { ready: boolean } | undefined)?.ready === true) return;
    await pool.query(migrateSql(this.#names));
  }
}

/** Whether `input` would win a claim on `record`: the same rule as the claim statement. */
function claimable(record: IdempotencyRecord, input: ClaimInput): boolean {
  if (record.expiresAtMs <= input.nowMs) return true;
  return (
    record.state === 'in_progress' && record.leaseExpiresAtMs <= input.nowMs && record.fingerprint === input.fingerprint
  );
}

function toRecord(row: PgRecordRow): IdempotencyRecord {
  return {
    key: row.key,
    fingerprint: row.fingerprint,
    state: row.state as RecordState,
    token: row.token,
    leaseExpiresAtMs: Number(row.lease_expires_at_ms),
    expiresAtMs: Number(row.expires_at_ms),
    result: row.result,
    createdAtMs: Number(row.created_at_ms),
    updatedAtMs: Number(row.updated_at_ms),
    attempts: row.attempts,
  };
}

/** A Buffer view of the same bytes: `pg` sends a Buffer as binary, without copying or hex. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function checkIdentifier(option: 'table' | 'schema', value: string, maxLength: number): void {
  if (!IDENTIFIER.test(value) || value.length > maxLength) {
    throw invalid(
      `the ${option} name ${JSON.stringify(value)} is not allowed: use 1 to ${maxLength} letters, digits or underscores`,
    );
  }
}

function invalid(message: string): IdempotencyError {
  return new IdempotencyError(ErrorCode.INVALID_OPTIONS, `[idem] [${STORE_NAME}] ${message}.`);
}
