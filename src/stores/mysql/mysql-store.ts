import type { PoolOptions } from 'mysql2/promise';
import { freshRecord, isClaimable } from '../../core/claim-rules.js';
import { ErrorCode, IdempotencyError } from '../../core/errors.js';
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
  invalidOptions,
  type OwnClient,
  pageOf,
  recordsInOrder,
  StoreOperations,
  toRecord,
} from '../../store-kit/index.js';
import { checkJournalSeq } from '../../store-kit/limits.js';
import type { MysqlPoolLike, MysqlQuery, MysqlValue } from './client.js';
import { mysqlMisconfiguration } from './errors.js';
import { existsSql, journalTable, MAX_TEXT_BYTES, migrateJournalSql, migrateSql } from './migrations.js';
import { MysqlJournal } from './mysql-journal.js';
import { type MysqlRecordRow, type MysqlStatements, mysqlStatements, selectManySql } from './sql.js';
import { affectedRows, bytesOf, ER_DUP_ENTRY, ER_LOCK_DEADLOCK, errno, matchedRows, textOf } from './values.js';

export interface MysqlStoreOptions {
  /**
   * The pool to run queries on, or a function that returns it (called on first use, and again
   * only if it threw). `close()` leaves this pool open: it belongs to the caller. Give either this
   * or `url`. Set `connectTimeout` on it (a few seconds) so a down server fails fast; the store
   * adds `queryTimeoutMs` to every statement itself.
   */
  pool?: MysqlPoolLike | (() => MysqlPoolLike | Promise<MysqlPoolLike>);
  /**
   * A `mysql://user:password@host:3306/database` URL: the store creates its own `mysql2` pool
   * from it (on first use) and `close()` ends that pool. Give either this or `pool`.
   */
  url?: string;
  /**
   * Table that holds the records, in the connection's database: letters, digits and
   * underscores, at most 56 characters. Created on first use if missing, with the journal table
   * `<table>_journal` beside it. Default `idem_records`.
   */
  table?: string;
  /** Own pool only: how long to wait for a connection to open, in ms. Default 3000. */
  connectTimeoutMs?: number;
  /**
   * How long one statement may take, in ms, enforced by the client on every statement (own
   * pool or not): past it the connection is dropped and the operation fails with
   * `STORE_UNAVAILABLE`. Default 5000.
   */
  queryTimeoutMs?: number;
  /** Own pool only: the most connections it opens. Default 10. */
  maxConnections?: number;
}

const STORE_NAME = 'mysql';
/** Leaves room for the journal table's `_journal` suffix within MySQL's 64 characters. */
const MAX_TABLE_LENGTH = 56;
/** How often a losing claim re-reads a record that changed under it before giving up. */
const MAX_CLAIM_ROUNDS = 10;

/**
 * A store in MySQL 8 or MariaDB 10.5+, for many processes and machines that share one
 * database. The claim reads the record first: a record that stands is the answer, and a missing
 * one is claimed by a plain INSERT; otherwise (a race, an expired record, a takeover) the claim is
 * one `INSERT ... ON DUPLICATE KEY UPDATE` whose every assignment is conditional, followed by a
 * read of the row. A workflow step's `append` and every other record
 * operation is one statement (starting a journal and `reopen` are a transaction). The tables
 * (records, and the journal `<table>_journal`) are created on first use (or by `migrate()`),
 * safely from many processes at once. Results are
 * sent as hex in the statement text, so the largest is about half of the server's
 * `max_allowed_packet` (8 MiB with MariaDB's default, 32 MiB with MySQL 8's).
 *
 * @example
 * ```ts
 * import mysql from 'mysql2/promise';
 * import { MysqlStore } from 'idem/mysql';
 *
 * // Own pool, ended by close():
 * const store = new MysqlStore({ url: process.env.MYSQL_URL });
 *
 * // Or share the application's pool (close() leaves it open):
 * const pool = mysql.createPool({ uri: process.env.MYSQL_URL, connectTimeout: 3000 });
 * const shared = new MysqlStore({ pool, table: 'payments_idem' });
 * await shared.migrate();
 * ```
 */
export class MysqlStore implements AdminStore, JournalStore {
  readonly name = STORE_NAME;
  #options: MysqlStoreOptions;
  #table: string;
  #sql: MysqlStatements;
  #journal: MysqlJournal;
  #queryTimeoutMs: number;
  /** Every operation, on the pool once the table exists. */
  #ops: StoreOperations<MysqlPoolLike>;

  constructor(options: MysqlStoreOptions) {
    checkOneConnection(STORE_NAME, 'pool', options.pool, options.url);
    const table = options.table ?? 'idem_records';
    checkIdentifier(STORE_NAME, 'table', table, MAX_TABLE_LENGTH);
    for (const option of ['connectTimeoutMs', 'queryTimeoutMs', 'maxConnections'] as const) {
      const value = options[option];
      if (value !== undefined && !(Number.isInteger(value) && value > 0)) {
        throw invalidOptions(STORE_NAME, `\`${option}\` must be a positive whole number, got ${String(value)}.`);
      }
    }
    this.#options = options;
    this.#table = table;
    this.#sql = mysqlStatements(table);
    this.#queryTimeoutMs = options.queryTimeoutMs ?? 5000;
    this.#journal = new MysqlJournal(STORE_NAME, table, (sql, values) => this.#query(sql, values));
    this.#ops = new StoreOperations({
      store: STORE_NAME,
      className: 'MysqlStore',
      given: options.pool,
      openOwn: () => this.#openOwnPool(),
      prepare: (pool) => this.#migrate(pool),
      misconfiguration: mysqlMisconfiguration,
    });
  }

  /**
   * Creates the tables if they are missing. Runs by itself before the first operation; call it at
   * start-up to fail early. Safe to run from many processes at once.
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
    await this.#ops.run('ping', (pool) => pool.query(this.#query('SELECT 1', {})));
  }

  async claim(input: ClaimInput): Promise<ClaimResult> {
    checkLength('key', input.key, ErrorCode.KEY_INVALID);
    checkLength('token', input.token, ErrorCode.INVALID_OPTIONS);
    checkLength('fingerprint', input.fingerprint, ErrorCode.INVALID_OPTIONS);
    return this.#ops.run('claim', async (pool) => {
      const key = bytesOf(input.key);
      const values = {
        key,
        fingerprint: bytesOf(input.fingerprint),
        token: bytesOf(input.token),
        nowMs: input.nowMs,
        leaseExpiresAtMs: input.leaseExpiresAtMs,
        expiresAtMs: input.expiresAtMs,
      };
      const settled = await this.#claimUnlocked(pool, input, values);
      if (settled !== undefined) return settled;
      for (let round = 0; round < MAX_CLAIM_ROUNDS; round++) {
        // Two callers race for a missing key:
        //   A: INSERT ... ON DUPLICATE KEY UPDATE  -> inserts the row with token A, commits
        //   B: INSERT ... ON DUPLICATE KEY UPDATE  -> waits on A's row lock, then finds the row;
        //      its conditional assignments see A's live lease and change nothing
        //   A, B: SELECT -> both read token A: A won, B lost and reports A's record.
        // The decision is made inside the one locked statement; the SELECT only reports it. Only
        // this claim writes its fresh token, so reading it back means this claim won. Should the
        // row be taken over between the two statements (our lease already over by the other
        // caller's clock), we report a loss with the new holder's record: one runner, never two.
        await this.#claimStatement(pool, values);
        const row = await this.#selectOne(pool, key, null);
        if (row === undefined) continue; // released, deleted or swept since: claim again
        const record = decodeRow(row);
        if (record.token === input.token) return { claimed: true, takeover: record.attempts > 1, record };
        // Between the two statements the record may have been replaced by one this claim
        // would beat; try again rather than report a record the claim would win.
        if (!isClaimable(record, input)) return { claimed: false, record };
      }
      throw new Error(`the record changed under ${MAX_CLAIM_ROUNDS} claims in a row`);
    });
  }

  async complete(input: CompleteInput): Promise<boolean> {
    return this.#changed('complete', this.#sql.complete, {
      key: bytesOf(input.key),
      token: bytesOf(input.token),
      result: asBuffer(input.result),
      nowMs: input.nowMs,
      expiresAtMs: input.expiresAtMs,
    });
  }

  async release(key: string, token: string): Promise<boolean> {
    return this.#changed('release', this.#sql.release, { key: bytesOf(key), token: bytesOf(token) });
  }

  async extend(input: ExtendInput): Promise<boolean> {
    return this.#changed('extend', this.#sql.extend, {
      key: bytesOf(input.key),
      token: bytesOf(input.token),
      nowMs: input.nowMs,
      leaseExpiresAtMs: input.leaseExpiresAtMs,
      expiresAtMs: input.expiresAtMs,
    });
  }

  async get(key: string, nowMs?: number): Promise<IdempotencyRecord | null> {
    return this.#ops.run('get', async (pool) => {
      const row = await this.#selectOne(pool, bytesOf(key), nowMs ?? null);
      return row === undefined ? null : decodeRow(row);
    });
  }

  async getMany(keys: readonly string[], nowMs?: number): Promise<(IdempotencyRecord | null)[]> {
    return this.#ops.run('getMany', async (pool) => {
      const unique = [...new Set(checkGetManyKeys(STORE_NAME, keys))];
      if (unique.length === 0) return [];
      const values = Object.fromEntries(unique.map((key, i) => [`k${i}`, bytesOf(key)]));
      const [rows] = await pool.query(this.#query(selectManySql(this.#table, unique.length), values));
      return recordsInOrder(keys, rows as MysqlRecordRow[], decodeRow, nowMs);
    });
  }

  async delete(key: string): Promise<boolean> {
    return this.#changed('delete', this.#sql.remove, { key: bytesOf(key) });
  }

  async list(options: ListOptions = {}): Promise<ListPage> {
    return this.#ops.run('list', async (pool) => {
      const limit = checkListLimit(STORE_NAME, options.limit);
      const [rows] = await pool.query(
        this.#query(this.#sql.list, {
          cursor: options.cursor === undefined ? null : bytesOf(options.cursor),
          state: options.state ?? null,
          nowMs: options.nowMs ?? null,
          limit: limit + 1,
        }),
      );
      return pageOf(rows as MysqlRecordRow[], limit, decodeRow);
    });
  }

  async sweep(nowMs: number, limit?: number): Promise<number> {
    return this.#ops.run('sweep', async (pool) => {
      const values = { nowMs, limit: checkSweepLimit(STORE_NAME, limit) };
      const [header] = await pool.query(this.#query(this.#sql.sweep, values));
      return affectedRows(header);
    });
  }

  async append(input: AppendInput): Promise<boolean> {
    checkJournalSeq(STORE_NAME, input.seq);
    return this.#ops.run('append', (pool) => this.#journal.append(pool, input));
  }

  async entries(key: string): Promise<JournalEntry[]> {
    return this.#ops.run('entries', (pool) => this.#journal.entries(pool, key));
  }

  async reopen(input: ReopenInput): Promise<boolean> {
    checkLength('token', input.token, ErrorCode.INVALID_OPTIONS);
    return this.#ops.run('reopen', (pool) => this.#journal.reopen(pool, input));
  }

  async runs(options: RunListOptions = {}): Promise<RunPage> {
    return this.#ops.run('runs', (pool) => this.#journal.runs(pool, options));
  }

  /** Ends the pool the store created from `url`; a pool passed in stays open. */
  async close(): Promise<void> {
    return this.#ops.close();
  }

  /**
   * The claim where one statement and no row lock settle it: `undefined` when they do not, and
   * the locking claim must run. A record that stands (live, not to be taken over) is the answer
   * as of the read: a replay or a 409 is one SELECT, where the locking claim took a row lock and
   * two statements. A key with no record is claimed by a plain INSERT: of two callers racing for
   * it, one inserts and the other gets ER_DUP_ENTRY and goes on to the locking claim, which finds
   * the winner's record. An expired record or one to take over is left to the locking claim.
   */
  async #claimUnlocked(
    pool: MysqlPoolLike,
    input: ClaimInput,
    values: Record<string, MysqlValue>,
  ): Promise<ClaimResult | undefined> {
    const row = await this.#selectOne(pool, values.key as Buffer, null);
    if (row !== undefined) {
      const record = decodeRow(row);
      return isClaimable(record, input) ? undefined : { claimed: false, record };
    }
    try {
      await pool.query(this.#query(this.#sql.insertFresh, values));
      return { claimed: true, takeover: false, record: freshRecord(input) };
    } catch (error) {
      if (errno(error) === ER_DUP_ENTRY) return undefined;
      throw error;
    }
  }

  async #claimStatement(pool: MysqlPoolLike, values: Record<string, MysqlValue>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await pool.query(this.#query(this.#sql.claim, values));
        return;
      } catch (error) {
        // InnoDB may pick a claim as a deadlock victim when several insert one missing key at
        // once; the statement was rolled back whole, so running it again is safe.
        if (attempt >= 3 || errno(error) !== ER_LOCK_DEADLOCK) throw error;
      }
    }
  }

  async #selectOne(pool: MysqlPoolLike, key: Buffer, nowMs: number | null): Promise<MysqlRecordRow | undefined> {
    const [rows] = await pool.query(this.#query(this.#sql.select, { key, nowMs }));
    return (rows as MysqlRecordRow[])[0];
  }

  /** Runs a statement that changes at most one row; true when it matched one. */
  async #changed(operation: string, sql: string, values: Record<string, MysqlValue>): Promise<boolean> {
    return this.#ops.run(operation, async (pool) => {
      const [header] = await pool.query(this.#query(sql, values));
      return matchedRows(header) === 1;
    });
  }

  #query(sql: string, values: Record<string, MysqlValue>): MysqlQuery {
    return {
      sql,
      values,
      namedPlaceholders: true,
      timeout: this.#queryTimeoutMs,
      rowsAsArray: false,
      nestTables: false,
    };
  }

  async #openOwnPool(): Promise<OwnClient<MysqlPoolLike>> {
    const { default: mysql } = await importDriver(
      STORE_NAME,
      'mysql2',
      'your own `pool`',
      () => import('mysql2/promise'),
    );
    const config: PoolOptions = {
      uri: this.#options.url,
      connectionLimit: this.#options.maxConnections ?? 10,
      connectTimeout: this.#options.connectTimeoutMs ?? 3000,
      enableKeepAlive: true,
      // BIGINT milliseconds come back as numbers (exact below 2^53); the store converts anyway.
      supportBigNumbers: true,
      bigNumberStrings: false,
    };
    const own = mysql.createPool(config);
    return { client: own, end: () => own.end() };
  }

  async #migrate(pool: MysqlPoolLike): Promise<void> {
    const [rows] = await pool.query(this.#query(existsSql, { table: this.#table, journal: journalTable(this.#table) }));
    if ((rows as unknown[]).length === 2) return;
    await pool.query(this.#query(migrateSql(this.#table), {}));
    await pool.query(this.#query(migrateJournalSql(this.#table), {}));
  }
}

/** The record a row holds: its byte columns read as UTF-8 text, then the shared column mapping. */
function decodeRow(row: MysqlRecordRow): IdempotencyRecord {
  return toRecord({
    ...row,
    key: textOf(row.idem_key),
    fingerprint: textOf(row.fingerprint),
    token: textOf(row.token),
    // A copy, so the record does not keep the driver's whole packet buffer alive.
    result: row.result === null ? null : new Uint8Array(row.result),
  });
}

function checkLength(field: 'key' | 'token' | 'fingerprint', value: string, code: ErrorCode): void {
  const length = Buffer.byteLength(value, 'utf8');
  if (length > MAX_TEXT_BYTES) {
    throw new IdempotencyError(
      code,
      `[idem] [${STORE_NAME}] the ${field} is ${length} bytes long; the MySQL store keeps at most ${MAX_TEXT_BYTES} (UTF-8).`,
    );
  }
}
