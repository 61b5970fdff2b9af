import type { PoolConfig } from 'pg';
import { isClaimable } from '../../core/claim-rules.js';
import type {
  AppendInput,
  JournalEntry,
  JournalStore,
  ReopenInput,
  RunListOptions,
  RunPage,
} from '../../core/journal.js';
import type {
  AdminStore,
  ClaimInput,
  ClaimResult,
  CompleteInput,
  ExtendInput,
  IdempotencyRecord,
  ListOptions,
  ListPage,
} from '../../core/store.js';
import {
  asBuffer,
  checkGetManyKeys,
  checkIdentifier,
  checkListLimit,
  checkOneConnection,
  checkSweepLimit,
  importDriver,
  type OwnClient,
  pageOf,
  recordsInOrder,
  type SqlRecordRow,
  StoreOperations,
  toRecord,
} from '../../store-kit/index.js';
import { checkJournalSeq } from '../../store-kit/limits.js';
import { postgresMisconfiguration } from './errors.js';
import { postgresJournalStatements } from './journal-sql.js';
import { existsSql, migrateSql, type PostgresTableNames, tableNames } from './migrations.js';
import { postgresStatements } from './sql.js';
import { StatementBatch } from './statement-batch.js';

/** Every statement of the store: the records' and the journal's. */
type Statements = ReturnType<typeof postgresStatements> & ReturnType<typeof postgresJournalStatements>;

/** A journal row as `pg` returns it: BIGINT as string, BYTEA as Buffer. */
interface JournalRow {
  seq: string;
  data: Buffer;
  at_ms: string;
}

/**
 * The part of a `pg` pool (or client) the store uses. A `pg.Pool` fits as it is; so does anything
 * with the same `query`, as long as a call without `values` accepts several statements separated by
 * semicolons (the migration sends its DDL that way).
 */
export interface PgPoolLike {
  /** Runs a statement; with a `name`, `pg` prepares it once per connection and reuses the plan. */
  query(config: {
    name?: string;
    text: string;
    values?: unknown[];
  }): Promise<{ rows: unknown[]; rowCount: number | null }>;
  /** Runs a statement, or several separated by `;` when no values are given (the migration does). */
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

export interface PostgresStoreOptions {
  /**
   * The pool to run queries on, or a function that returns it (called on first use, and again
   * only if it threw).
   * `close()` leaves this pool open: it belongs to the caller. Give either this or
   * `url`. Its own timeouts apply; set `connectionTimeoutMillis` and
   * `query_timeout` on it so a down server fails fast instead of hanging.
   */
  pool?: PgPoolLike | (() => PgPoolLike | Promise<PgPoolLike>);
  /**
   * A `postgres://` URL: the store creates its own `pg` pool from it (on first use) and
   * `close()` ends that pool. Give either this or `pool`.
   */
  url?: string;
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
const MAX_TABLE_LENGTH = 50; // leaves room for the `_journal_pkey` suffix within PostgreSQL's 63 bytes
const MAX_SCHEMA_LENGTH = 63;
/** How often a losing claim re-reads a record that changed under it before giving up. */
const MAX_CLAIM_ROUNDS = 10;
/** Results larger than this are completed on their own: a batch stays a small statement. */
const MAX_BATCHED_RESULT_BYTES = 64 * 1024;

/** A row of the claim statements: the record, and whether this claim won it. */
type ClaimRow = SqlRecordRow & { won: boolean };

/**
 * The answer a claim statement's row gives `input`, or undefined when the claim must look again:
 * the snapshot showed a claimable record, but another caller claimed it first. (No row at all
 * means the same: a concurrent claim committed the key after the snapshot.) A record in progress
 * under this claim's own token was won by this very claim: a batch that committed but whose answer
 * was lost (a client-side timeout), retried alone. Tokens are fresh per claim, so no one else holds it.
 */
function claimResult(row: ClaimRow, input: ClaimInput): ClaimResult | undefined {
  const record = toRecord(row);
  if (row.won || (record.state === 'in_progress' && record.token === input.token)) {
    return { claimed: true, takeover: record.attempts > 1, record };
  }
  return isClaimable(record, input) ? undefined : { claimed: false, record };
}

/** A completion as the statements take it: the result as a Buffer, which `pg` sends as bytea. */
interface Completion {
  key: string;
  token: string;
  result: Buffer;
  nowMs: number;
  expiresAtMs: number;
}

/**
 * The parameters of `claim` ($1..$6), in order: one value each for the single statement, one array
 * each (of every item's value) for `claimMany`, so the two cannot bind in different orders.
 */
const CLAIM_PARAMETERS: readonly ((input: ClaimInput) => unknown)[] = [
  (input) => input.key,
  (input) => input.fingerprint,
  (input) => input.token,
  (input) => input.nowMs,
  (input) => input.leaseExpiresAtMs,
  (input) => input.expiresAtMs,
];

/** The parameters of `complete` ($1..$5), in order, as `CLAIM_PARAMETERS` are for claims. */
const COMPLETE_PARAMETERS: readonly ((item: Completion) => unknown)[] = [
  (item) => item.key,
  (item) => item.token,
  (item) => item.result,
  (item) => item.nowMs,
  (item) => item.expiresAtMs,
];

/**
 * A store in PostgreSQL, for many processes and machines that share one database. Each operation
 * is one prepared statement: the claim reads the record and, only when it does not stand, runs an
 * `INSERT ... ON CONFLICT DO UPDATE ... WHERE` in the same statement, so a replay takes no lock.
 * A workflow step's `append` is one statement too, fenced by a share lock on the run's record.
 * Claims and completions that arrive in the same turn of the event loop are sent as one statement
 * over arrays (one round trip, transaction and WAL flush for all of them), each still decided on
 * its own row; if that statement fails, each call runs again on its own (see `StatementBatch`).
 * The tables (records, and the journal `<table>_journal`) are created on first use (or by
 * `migrate()`), safely from many processes at once.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { PostgresStore } from 'idem/postgres';
 *
 * // Own pool, ended by close():
 * const store = new PostgresStore({ url: process.env.DATABASE_URL });
 *
 * // Or share the application's pool (close() leaves it open):
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 5000 });
 * const shared = new PostgresStore({ pool, table: 'payments_idem' });
 * await shared.migrate();
 * ```
 */
export class PostgresStore implements AdminStore, JournalStore {
  readonly name = STORE_NAME;
  #options: PostgresStoreOptions;
  #names: PostgresTableNames;
  #sql: Statements;
  /** Every operation, on the pool once the table exists. */
  #ops: StoreOperations<PgPoolLike>;
  /** Claims that arrive in one turn, sent as one statement. */
  #claims = new StatementBatch<ClaimInput, ClaimResult>({
    many: (pool, items) => this.#claimMany(pool, items),
    one: (pool, item) => this.#claimOne(pool, item),
    keyOf: (item) => item.key,
  });
  /** Completions that arrive in one turn, sent as one statement. */
  #completions = new StatementBatch<Completion, boolean>({
    many: (pool, items) => this.#completeMany(pool, items),
    one: (pool, item) => this.#completeOne(pool, item),
    keyOf: (item) => item.key,
  });

  constructor(options: PostgresStoreOptions) {
    checkOneConnection(STORE_NAME, 'pool', options.pool, options.url);
    const table = options.table ?? 'idem_records';
    checkIdentifier(STORE_NAME, 'table', table, MAX_TABLE_LENGTH);
    if (options.schema !== undefined) checkIdentifier(STORE_NAME, 'schema', options.schema, MAX_SCHEMA_LENGTH);
    this.#options = options;
    this.#names = tableNames(table, options.schema);
    this.#sql = { ...postgresStatements(this.#names.table), ...postgresJournalStatements(this.#names) };
    this.#ops = new StoreOperations({
      store: STORE_NAME,
      className: 'PostgresStore',
      given: options.pool,
      openOwn: () => this.#openOwnPool(),
      prepare: (pool) => this.#migrate(pool),
      misconfiguration: postgresMisconfiguration,
    });
  }

  /**
   * Creates the tables and their indexes if they are missing. Runs by itself before the first
   * operation; call it at start-up to fail early. Safe to run from many processes at once.
   */
  async migrate(): Promise<void> {
    await this.#ops.run('migrate', () => undefined);
  }

  /**
   * Readiness check: connects, creates the tables if they are missing, and runs `SELECT 1`. Rejects
   * with `STORE_MISCONFIGURED` when the server refuses the configuration (user, password,
   * database, permissions), `STORE_UNAVAILABLE` when it cannot be reached.
   */
  async ping(): Promise<void> {
    await this.#ops.run('ping', (pool) => pool.query('SELECT 1'));
  }

  async claim(input: ClaimInput): Promise<ClaimResult> {
    return this.#ops.run('claim', (pool) => this.#claims.add(pool, input));
  }

  async complete(input: CompleteInput): Promise<boolean> {
    const { key, token, nowMs, expiresAtMs } = input;
    const completion = { key, token, result: asBuffer(input.result), nowMs, expiresAtMs };
    return this.#ops.run('complete', (pool) =>
      completion.result.byteLength > MAX_BATCHED_RESULT_BYTES
        ? this.#completeOne(pool, completion)
        : this.#completions.add(pool, completion),
    );
  }

  async release(key: string, token: string): Promise<boolean> {
    return this.#changed('release', [key, token]);
  }

  async extend(input: ExtendInput): Promise<boolean> {
    return this.#changed('extend', [input.key, input.token, input.nowMs, input.leaseExpiresAtMs, input.expiresAtMs]);
  }

  async get(key: string, nowMs?: number): Promise<IdempotencyRecord | null> {
    return this.#ops.run('get', async (pool) => {
      const { rows } =
        nowMs === undefined
          ? await this.#prepared(pool, 'select', [key])
          : await this.#prepared(pool, 'selectLive', [key, nowMs]);
      const row = rows[0] as SqlRecordRow | undefined;
      return row === undefined ? null : toRecord(row);
    });
  }

  async getMany(keys: readonly string[], nowMs?: number): Promise<(IdempotencyRecord | null)[]> {
    return this.#ops.run('getMany', async (pool) => {
      const unique = [...new Set(checkGetManyKeys(STORE_NAME, keys))];
      if (unique.length === 0) return [];
      const { rows } = await this.#prepared(pool, 'selectMany', [unique]);
      return recordsInOrder(keys, rows as SqlRecordRow[], toRecord, nowMs);
    });
  }

  async delete(key: string): Promise<boolean> {
    return this.#changed('remove', [key]);
  }

  async list(options: ListOptions = {}): Promise<ListPage> {
    return this.#ops.run('list', async (pool) => {
      const limit = checkListLimit(STORE_NAME, options.limit);
      const { rows } = await pool.query(this.#sql.list, [
        options.cursor ?? null,
        options.state ?? null,
        options.nowMs ?? null,
        limit + 1,
      ]);
      return pageOf(rows as SqlRecordRow[], limit, toRecord);
    });
  }

  async sweep(nowMs: number, limit?: number): Promise<number> {
    return this.#ops.run('sweep', async (pool) => {
      const { rowCount } = await pool.query(this.#sql.sweep, [nowMs, checkSweepLimit(STORE_NAME, limit)]);
      return rowCount ?? 0;
    });
  }

  async append(input: AppendInput): Promise<boolean> {
    const seq = checkJournalSeq(STORE_NAME, input.seq);
    const data = asBuffer(input.data);
    return this.#ops.run('append', async (pool) => {
      const answer =
        seq === 0
          ? await this.#prepared(pool, 'appendFirst', [input.key, input.token, data, input.nowMs])
          : await this.#prepared(pool, 'append', [input.key, input.token, seq, data, input.nowMs]);
      return answer.rowCount === 1;
    });
  }

  async entries(key: string): Promise<JournalEntry[]> {
    return this.#ops.run('entries', async (pool) => {
      const { rows } = await this.#prepared(pool, 'entries', [key]);
      return (rows as JournalRow[]).map((row) => ({
        seq: Number(row.seq),
        // A copy: `pg` may parse small values into slices of a shared buffer.
        data: new Uint8Array(row.data),
        atMs: Number(row.at_ms),
      }));
    });
  }

  async reopen(input: ReopenInput): Promise<boolean> {
    return this.#changed('reopen', [
      input.key,
      input.expectedToken,
      input.token,
      input.nowMs,
      input.leaseExpiresAtMs,
      input.expiresAtMs,
    ]);
  }

  async runs(options: RunListOptions = {}): Promise<RunPage> {
    return this.#ops.run('runs', async (pool) => {
      const limit = checkListLimit(STORE_NAME, options.limit);
      const { rows } = await pool.query(this.#sql.runs, [options.cursor ?? null, options.dueBy ?? null, limit + 1]);
      const keys = (rows as { key: string }[]).map((row) => row.key);
      return { keys: keys.slice(0, limit), nextCursor: keys.length > limit ? keys[limit - 1] : undefined };
    });
  }

  /** Ends the pool the store created from `url`; a pool passed in stays open. */
  async close(): Promise<void> {
    return this.#ops.close();
  }

  /** Claims one key with the single-claim statement, looking again while the record changes under it. */
  async #claimOne(pool: PgPoolLike, input: ClaimInput): Promise<ClaimResult> {
    for (let round = 0; round < MAX_CLAIM_ROUNDS; round++) {
      const answer = await this.#prepared(
        pool,
        'claim',
        CLAIM_PARAMETERS.map((value) => value(input)),
      );
      const row = answer.rows[0] as ClaimRow | undefined;
      const result = row === undefined ? undefined : claimResult(row, input);
      if (result !== undefined) return result;
    }
    throw new Error(`the record changed under ${MAX_CLAIM_ROUNDS} claims in a row`);
  }

  /**
   * Claims many keys (distinct) in one statement. A key whose answer needs another look (see
   * `claimResult`) is left undefined, and goes through `#claimOne`.
   */
  async #claimMany(pool: PgPoolLike, items: readonly ClaimInput[]): Promise<(ClaimResult | undefined)[]> {
    const { rows } = await this.#prepared(
      pool,
      'claimMany',
      CLAIM_PARAMETERS.map((value) => items.map(value)),
    );
    const byKey = new Map((rows as ClaimRow[]).map((row) => [row.key, row]));
    return items.map((item) => {
      const row = byKey.get(item.key);
      return row === undefined ? undefined : claimResult(row, item);
    });
  }

  async #completeOne(pool: PgPoolLike, item: Completion): Promise<boolean> {
    const answer = await this.#prepared(
      pool,
      'complete',
      COMPLETE_PARAMETERS.map((value) => value(item)),
    );
    return answer.rowCount === 1;
  }

  /** Completes many records in one statement; each is true only when its own key and token came back. */
  async #completeMany(pool: PgPoolLike, items: readonly Completion[]): Promise<boolean[]> {
    const { rows } = await this.#prepared(
      pool,
      'completeMany',
      COMPLETE_PARAMETERS.map((value) => items.map(value)),
    );
    const completed = new Map((rows as { key: string; token: string }[]).map((row) => [row.key, row.token]));
    return items.map((item) => completed.get(item.key) === item.token);
  }

  /** Runs a statement that changes at most one row; true when it did. */
  async #changed(statement: 'release' | 'extend' | 'remove' | 'reopen', values: unknown[]): Promise<boolean> {
    return this.#ops.run(
      statement === 'remove' ? 'delete' : statement,
      async (pool) => (await this.#prepared(pool, statement, values)).rowCount === 1,
    );
  }

  /**
   * Runs one of the hot statements as a named prepared statement: parsed and planned once per
   * connection instead of on every call (the claim's plan alone costs more than its execution).
   * The name carries a hash of the table, so two stores on one pool never share a name.
   */
  #prepared(pool: PgPoolLike, statement: keyof Statements, values: unknown[]) {
    return pool.query({ name: `idem_${statement}_${this.#names.hash}`, text: this.#sql[statement], values });
  }

  async #openOwnPool(): Promise<OwnClient<PgPoolLike>> {
    const { default: pg } = await importDriver(STORE_NAME, 'pg', 'your own `pool`', () => import('pg'));
    const queryTimeoutMs = this.#options.queryTimeoutMs ?? 5000;
    const config: PoolConfig = {
      connectionString: this.#options.url,
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
    return { client: own, end: () => own.end() };
  }

  async #migrate(pool: PgPoolLike): Promise<void> {
    const { table, expiresIndex, journal, runsIndex } = this.#names;
    const { rows } = await pool.query(existsSql, [table, expiresIndex, journal, runsIndex]);
    if ((rows[0] as { ready: boolean } | undefined)?.ready === true) return;
    await pool.query(migrateSql(this.#names));
  }
}
