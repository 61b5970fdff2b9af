import type BetterSqlite3 from 'better-sqlite3';
import { decideClaim, isExpired } from '../../core/claim-rules.js';
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
  checkGetManyKeys,
  checkListLimit,
  checkSweepLimit,
  importDriver,
  invalidOptions,
  type OwnClient,
  pageOf,
  recordsInOrder,
  resolveGiven,
  type SqlRecordRow,
  StoreOperations,
  toRecord,
} from '../../store-kit/index.js';
import { migrationStatements } from './migrations.js';
import * as sql from './sql.js';
import { type PreparedJournal, prepareJournal, runPageOf } from './sqlite-journal.js';
import { switchToWal } from './wal.js';
import { WriteBatch } from './write-batch.js';

/** The part of a better-sqlite3 `Statement` the store uses. */
export interface SqliteStatementLike {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

/**
 * The part of a better-sqlite3 `Database` the store uses: a better-sqlite3 (v12) `Database`
 * fits as it is. `transaction(fn).immediate(...)` must run `fn` inside `BEGIN IMMEDIATE`.
 */
export interface SqliteDatabaseLike {
  prepare(source: string): SqliteStatementLike;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): { immediate(...args: A): R };
  /**
   * True while a transaction is open on the connection (better-sqlite3 has it). Without it, a
   * write that throws inside a group commit fails every write of its batch, not only its own.
   */
  readonly inTransaction?: boolean;
}

export interface SqliteStoreOptions {
  /**
   * The database file the store opens (and creates if missing) with better-sqlite3, in WAL mode;
   * `close()` closes it. `':memory:'` keeps records in this connection only. Give `path` or
   * `database`, not both. Default `'./idem.db'`, relative to the working directory.
   */
  path?: string;
  /**
   * A better-sqlite3 `Database` you opened, or a function that returns one on first use. The store
   * uses it as configured (it sets no pragmas: choose WAL and a busy timeout yourself; better-sqlite3
   * waits 5000 ms by default) and `close()` leaves it open. Default: none, the store opens `path`.
   */
  database?: SqliteDatabaseLike | (() => SqliteDatabaseLike | Promise<SqliteDatabaseLike>);
  /**
   * The table that holds the records: letters, digits and underscore, up to 64. Default
   * `'idem_records'`. Workflow journals go in the table of the same name with `_journal` after it.
   */
  table?: string;
  /**
   * How long, in ms, a write waits for another connection (another process on the same file)
   * to finish its write before failing with `STORE_UNAVAILABLE`. Only for the file the store
   * opens itself. Default 5000.
   */
  busyTimeoutMs?: number;
  /**
   * SQLite's `synchronous` setting for the file the store opens itself. `'NORMAL'` is safe in WAL
   * mode: the file is never corrupted and a crashed process loses nothing, but a power cut or OS
   * crash may roll back the last few commits, so a completed key could run once more after
   * a reboot. `'FULL'` syncs on every commit and closes that gap, at several times the cost per
   * write on most disks. Default `'NORMAL'`.
   */
  synchronous?: 'NORMAL' | 'FULL';
}

interface Prepared {
  claim(input: ClaimInput): ClaimResult | Promise<ClaimResult>;
  /** The group commit that claims, completions, releases and extensions write through. */
  writes: WriteBatch;
  select: SqliteStatementLike;
  selectMany: SqliteStatementLike;
  complete: SqliteStatementLike;
  release: SqliteStatementLike;
  extend: SqliteStatementLike;
  delete: SqliteStatementLike;
  listFirst: SqliteStatementLike;
  listNext: SqliteStatementLike;
  sweep: SqliteStatementLike;
  journal: PreparedJournal;
}

const STORE_NAME = 'sqlite';
/** The name is not quoted in the SQL, so it may not start with a digit; `sqlite_` names are SQLite's own. */
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/**
 * A store in one SQLite file, through better-sqlite3: Idem's embedded default, with no server.
 * A claim reads the record first, and a record that stands (a replay, a key in progress) is the
 * answer with no lock taken. Writes are group-committed: the claims, completions, releases and
 * extensions that arrive in one turn of the event loop run, in arrival order, in one
 * `BEGIN IMMEDIATE` transaction on `setImmediate`, so a burst of requests pays for one commit, and
 * a lone write waits one turn. Several processes on one machine may share the file: a claim's
 * read-decide-write holds SQLite's write lock from its read under the lock, and the other
 * processes wait up to `busyTimeoutMs` for their turn. The file must be on a local disk
 * (WAL needs shared memory, which network file systems do not give). Machines that serve one API
 * together need a shared server store (PostgreSQL, MySQL, Redis) instead.
 *
 * It keeps the journals of workflows too (`JournalStore`), in the table `<table>_journal`: an
 * entry is appended in one statement that checks the run's record, and a record's entries are
 * deleted with it, in the same statement, by a trigger.
 *
 * better-sqlite3 is synchronous: each method runs its statement (and a batch its transaction) to
 * the end before it returns, and blocks the event loop for that time: tens of microseconds, but
 * up to `busyTimeoutMs` while another process holds the write lock.
 *
 * @example
 * ```ts
 * import { idempotent } from 'idem';
 * import { SqliteStore } from 'idem/sqlite';
 * const store = new SqliteStore({ path: './data/idem.db' });
 * const charge = idempotent(chargeCard, { store, key: (req) => req.id });
 * // on shutdown
 * await store.close();
 * ```
 */
export class SqliteStore implements AdminStore, JournalStore {
  readonly name = STORE_NAME;
  #path: string;
  #database: SqliteStoreOptions['database'];
  #table: string;
  #busyTimeoutMs: number;
  #synchronous: 'NORMAL' | 'FULL';
  /** The prepared statements of the open database, opened on first use. */
  #ops: StoreOperations<Prepared>;

  constructor(options: SqliteStoreOptions = {}) {
    const table = options.table ?? 'idem_records';
    if (!TABLE_NAME.test(table) || table.toLowerCase().startsWith('sqlite_')) {
      throw invalidOptions(
        STORE_NAME,
        `table ${JSON.stringify(table)} is not a valid table name: use 1 to 64 letters, digits and underscores, starting with a letter or underscore (and not with "sqlite_").`,
      );
    }
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
      throw invalidOptions(STORE_NAME, `busyTimeoutMs must be a whole number of ms, 0 or more; got ${busyTimeoutMs}.`);
    }
    const synchronous = options.synchronous ?? 'NORMAL';
    if (synchronous !== 'NORMAL' && synchronous !== 'FULL') {
      throw invalidOptions(STORE_NAME, `synchronous must be 'NORMAL' or 'FULL'; got ${JSON.stringify(synchronous)}.`);
    }
    const path = options.path ?? './idem.db';
    if (typeof path !== 'string' || path === '') {
      throw invalidOptions(STORE_NAME, 'path must be a file path or ":memory:".');
    }
    if (options.path !== undefined && options.database !== undefined) {
      throw invalidOptions(
        STORE_NAME,
        'give either path (the store opens the file) or database (your own connection), not both.',
      );
    }
    this.#path = path;
    this.#database = options.database;
    this.#table = table;
    this.#busyTimeoutMs = busyTimeoutMs;
    this.#synchronous = synchronous;
    // Opening and preparing are one step: a connection of our own whose migration failed is
    // closed again, so the next call opens a fresh one.
    this.#ops = new StoreOperations<Prepared>({
      store: STORE_NAME,
      className: 'SqliteStore',
      given: undefined,
      openOwn: () => this.#open(),
      explain: (operation, error) => this.#busy(operation, error),
    });
  }

  /** Opens the database and creates the table if needed. Runs by itself on first use; safe to call many times. */
  async migrate(): Promise<void> {
    await this.#ops.run('migrate', () => undefined);
  }

  /** Readiness check: opens the file, creates the table if it is missing, and reads from it. */
  async ping(): Promise<void> {
    await this.#ops.run('ping', (prepared) => prepared.select.get(''));
  }

  async claim(input: ClaimInput): Promise<ClaimResult> {
    return this.#ops.run('claim', (prepared) => prepared.claim(input));
  }

  async complete(input: CompleteInput): Promise<boolean> {
    return this.#ops.run('complete', ({ writes, complete }) =>
      writes.add(
        () => complete.run(input.result, input.expiresAtMs, input.nowMs, input.key, input.token).changes === 1,
      ),
    );
  }

  async release(key: string, token: string): Promise<boolean> {
    return this.#ops.run('release', ({ writes, release }) => writes.add(() => release.run(key, token).changes === 1));
  }

  async extend(input: ExtendInput): Promise<boolean> {
    return this.#ops.run('extend', ({ writes, extend }) =>
      writes.add(
        () => extend.run(input.leaseExpiresAtMs, input.expiresAtMs, input.nowMs, input.key, input.token).changes === 1,
      ),
    );
  }

  async get(key: string, nowMs?: number): Promise<IdempotencyRecord | null> {
    return this.#ops.run('get', (prepared) => {
      const row = prepared.select.get(key) as SqlRecordRow | undefined;
      if (row === undefined) return null;
      const record = toRecord(row);
      return nowMs !== undefined && isExpired(record, nowMs) ? null : record;
    });
  }

  async getMany(keys: readonly string[], nowMs?: number): Promise<(IdempotencyRecord | null)[]> {
    return this.#ops.run('getMany', (prepared) => {
      if (checkGetManyKeys(STORE_NAME, keys).length === 0) return [];
      const rows = prepared.selectMany.all(JSON.stringify(keys)) as SqlRecordRow[];
      return recordsInOrder(keys, rows, toRecord, nowMs);
    });
  }

  async delete(key: string): Promise<boolean> {
    return this.#ops.run('delete', (prepared) => prepared.delete.run(key).changes === 1);
  }

  async list(options: ListOptions = {}): Promise<ListPage> {
    return this.#ops.run('list', (prepared) => {
      const limit = checkListLimit(STORE_NAME, options.limit);
      const params = { state: options.state ?? null, nowMs: options.nowMs ?? null, limit: limit + 1 };
      const rows = (
        options.cursor === undefined
          ? prepared.listFirst.all(params)
          : prepared.listNext.all({ ...params, cursor: options.cursor })
      ) as SqlRecordRow[];
      return pageOf(rows, limit, toRecord);
    });
  }

  async sweep(nowMs: number, limit?: number): Promise<number> {
    return this.#ops.run('sweep', (prepared) => prepared.sweep.run(nowMs, checkSweepLimit(STORE_NAME, limit)).changes);
  }

  async append(input: AppendInput): Promise<boolean> {
    return this.#ops.run('append', (prepared) => prepared.journal.append(input));
  }

  async entries(key: string): Promise<JournalEntry[]> {
    return this.#ops.run('entries', (prepared) => prepared.journal.entries(key));
  }

  async reopen(input: ReopenInput): Promise<boolean> {
    return this.#ops.run('reopen', (prepared) => prepared.journal.reopen(input));
  }

  async runs(options: RunListOptions = {}): Promise<RunPage> {
    return this.#ops.run('runs', (prepared) => {
      const limit = checkListLimit(STORE_NAME, options.limit, 'runs');
      const query = { dueBy: options.dueBy ?? null, cursor: options.cursor, limit: limit + 1 };
      return runPageOf(prepared.journal.runKeys(query), limit);
    });
  }

  /**
   * Commits the writes still queued for a group commit (they settle as usual), then closes the
   * file the store opened itself; a `database` passed in stays open.
   */
  async close(): Promise<void> {
    return this.#ops.close();
  }

  async #open(): Promise<OwnClient<Prepared>> {
    const given = this.#database;
    const db = given === undefined ? await this.#openFile() : await resolveGiven(given);
    let prepared: Prepared | undefined;
    const end = async (): Promise<void> => {
      // A write queued by a call that began before close() is committed before the file closes.
      prepared?.writes.flush();
      if (given === undefined) (db as BetterSqlite3.Database).close();
    };
    try {
      prepared = this.#prepare(db);
      return { client: prepared, end };
    } catch (error) {
      // A retry opens a fresh connection; do not leave this one behind.
      await end();
      throw error;
    }
  }

  /** Creates the table if needed and prepares every statement, once per store. */
  #prepare(db: SqliteDatabaseLike): Prepared {
    const table = this.#table;
    const statements = migrationStatements(table);
    db.transaction(() => {
      for (const statement of statements) db.prepare(statement).run();
    }).immediate();

    const select = db.prepare(sql.selectRecord(table));
    const insertFresh = db.prepare(sql.insertFreshClaim(table));
    const upsertFresh = db.prepare(sql.upsertFreshClaim(table));
    const takeOver = db.prepare(sql.takeOverClaim(table));
    const writes = new WriteBatch(db);
    // Runs in the batch's BEGIN IMMEDIATE: the write lock is held from the read on, so no other
    // process can claim, complete or release this key between what we read and what we write,
    // and a claim of the same key earlier in the batch is read as written.
    const claimLocked = (input: ClaimInput): ClaimResult => {
      const row = select.get(input.key) as SqlRecordRow | undefined;
      const answer = decideClaim(row === undefined ? undefined : toRecord(row), input);
      if (!answer.claimed) return answer;
      if (answer.takeover) {
        takeOver.run(input.token, input.leaseExpiresAtMs, input.expiresAtMs, input.nowMs, input.key);
      } else {
        upsertFresh.run(
          input.key,
          input.fingerprint,
          input.token,
          input.leaseExpiresAtMs,
          input.expiresAtMs,
          input.nowMs,
          input.nowMs,
        );
      }
      return answer;
    };
    // A key the read found absent is most likely still absent: one INSERT claims it, and only
    // when a record appeared since (a rival's, or an earlier claim of this batch) is it read again.
    const claimFresh = (input: ClaimInput, answer: ClaimResult): ClaimResult => {
      const { key, fingerprint, token, leaseExpiresAtMs, expiresAtMs, nowMs } = input;
      const inserted =
        insertFresh.run(key, fingerprint, token, leaseExpiresAtMs, expiresAtMs, nowMs, nowMs).changes === 1;
      return inserted ? answer : claimLocked(input);
    };
    const claim = (input: ClaimInput): ClaimResult | Promise<ClaimResult> => {
      const row = select.get(input.key) as SqlRecordRow | undefined;
      const answer = decideClaim(row === undefined ? undefined : toRecord(row), input);
      // A record that stands (a replay, a key in progress, a mismatch) is the answer as of the
      // read, as it would be under the lock: no batch, no lock, nothing written.
      if (!answer.claimed) return answer;
      return writes.add(row === undefined ? () => claimFresh(input, answer) : () => claimLocked(input));
    };

    return {
      claim,
      writes,
      select,
      selectMany: db.prepare(sql.selectRecords(table)),
      complete: db.prepare(sql.completeRecord(table)),
      release: db.prepare(sql.releaseRecord(table)),
      extend: db.prepare(sql.extendLease(table)),
      delete: db.prepare(sql.deleteRecord(table)),
      listFirst: db.prepare(sql.listFirstPage(table)),
      listNext: db.prepare(sql.listNextPage(table)),
      sweep: db.prepare(sql.sweepExpired(table)),
      journal: prepareJournal(db, table),
    };
  }

  /** Opens `path` with the store's pragmas. */
  async #openFile(): Promise<BetterSqlite3.Database> {
    const { default: Database } = await importDriver(
      STORE_NAME,
      'better-sqlite3@12',
      'your own connection as `database`',
      () => import('better-sqlite3'),
    );
    // The constructor's timeout is SQLite's busy_timeout: set before the first pragma, so even
    // switching the file to WAL waits for other processes (and `switchToWal` retries the deadlock
    // SQLite will not wait out).
    const db = new Database(this.#path, { timeout: this.#busyTimeoutMs });
    try {
      await switchToWal(db, this.#busyTimeoutMs);
      db.pragma(`synchronous = ${this.#synchronous}`);
      // Commits are small (a batch of claims or completions), and each checkpoint syncs both
      // files. Checkpointing every 4000 pages (a WAL of about 16 MiB) instead of SQLite's 1000
      // syncs a quarter as often: about 10% more claim+complete pairs per second, measured.
      db.pragma('wal_autocheckpoint = 4000');
    } catch (error) {
      db.close();
      throw error;
    }
    return db;
  }

  /** The locked-database message, for SQLITE_BUSY and SQLITE_LOCKED; `undefined` for any other error. */
  #busy(operation: string, error: unknown): IdempotencyError | undefined {
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code !== 'string' || !(code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))) {
      return undefined;
    }
    const waited =
      this.#database === undefined ? `busyTimeoutMs (${this.#busyTimeoutMs} ms)` : "the connection's busy timeout";
    return new IdempotencyError(
      ErrorCode.STORE_UNAVAILABLE,
      `[idem] [sqlite] ${operation} failed: the database is locked by another connection (${code}) for longer than ${waited}. Nothing was run; retry, raise busyTimeoutMs, or find the process that holds a long write transaction on this file.`,
      { cause: error },
    );
  }
}
