import { randomUUID } from 'node:crypto';
import { ErrorCode, IdempotencyError } from '../../core/errors.js';
import { asBuffer } from '../../store-kit/as-buffer.js';
import { importDriver } from '../../store-kit/driver.js';
import type { OwnClient } from '../../store-kit/lazy-client.js';
import { switchToWal } from '../../stores/sqlite/wal.js';
import type {
  DeadMessage,
  OutboxCounts,
  OutboxMessage,
  OutboxStore,
  PendingMessage,
  RelayPassInput,
  RelayPassResult,
} from './outbox.js';
import { callerCode, OutboxOperations } from './outbox-operations.js';
import {
  checkCleanup,
  checkDeadLimit,
  checkMaxPayloadBytes,
  checkRelayInput,
  checkReviveId,
  EMPTY_PASS,
  type EncodedMessage,
  encodeMessage,
  marksOf,
  outboxLabel,
  outboxMisuse,
  type PassMarks,
  type PendingRow,
  passResult,
  pendingOf,
} from './outbox-rules.js';
import { type SqliteOutboxStatements, sqliteOutboxStatements } from './sqlite-outbox-sql.js';
import { type SqliteOutboxDatabaseLike, type SqliteOutboxStatementLike, writeTransaction } from './sqlite-write.js';

export type { SqliteOutboxDatabaseLike, SqliteOutboxStatementLike } from './sqlite-write.js';

export interface SqliteOutboxOptions {
  /**
   * The outbox table: letters, digits and underscores, up to 48, starting with a letter or
   * underscore (and not `sqlite_`). Created on first use if missing. Default `idem_outbox`.
   */
  table?: string;
  /** The largest payload `enqueue` accepts, in bytes (1 to 64 MiB). Default 1 MiB. */
  maxPayloadBytes?: number;
  /**
   * How long a relay pass holds its messages, in ms, renewed every third of it while `publish`
   * runs. Only a relay that died (or whose event loop stalled that long) loses them: another
   * takes them once the lease ends. Default 30000.
   */
  leaseMs?: number;
  /** With a path: how long to wait for another process's write lock, in ms. Default 5000. */
  busyTimeoutMs?: number;
}

/** The SQLite outbox: the contract, plus a synchronous enqueue for `db.transaction(() => ...)`. */
export interface SqliteOutbox<D extends SqliteOutboxDatabaseLike = SqliteOutboxDatabaseLike> extends OutboxStore<D> {
  /**
   * `enqueue`, synchronously: writes the message on `tx` (inside the caller's transaction) and
   * returns its id, or throws (`INVALID_OPTIONS` for a bad message, nothing written). Use it inside
   * better-sqlite3's `db.transaction(() => ...)`, whose function cannot await: a failure then
   * throws out of that function and rolls the transaction back. Creates the table on `tx` if missing.
   */
  enqueueSync(tx: D, message: OutboxMessage): string;
}

const DIALECT = 'sqlite';
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/;
const DEFAULT_LEASE_MS = 30_000;

/** The outbox's own connection (or the caller's database), with its statements once the table exists. */
interface Connection {
  db: SqliteOutboxDatabaseLike;
  statements?: Record<keyof SqliteOutboxStatements, SqliteOutboxStatementLike>;
}

/**
 * The transactional outbox in SQLite, through better-sqlite3. The message is written on the
 * caller's `Database` inside the caller's transaction, so it exists if and only if that commits:
 * inside `db.transaction(() => ...)`, call `enqueueSync` (the function cannot await; a failure
 * must throw out of it); around an explicit `BEGIN ... COMMIT` with awaits between, `enqueue`
 * works too (it writes at once, before it returns).
 *
 * SQLite has no row locks, so a relay pass leases its messages instead: one short `BEGIN
 * IMMEDIATE` transaction picks the due ones and marks them held (for `leaseMs`, renewed while
 * `publish` runs), `publish` runs with no transaction open, and a second short transaction marks
 * the outcome. Relays in several processes serialize on the write lock and never hold the same
 * message; the write lock is never held across an await, so the application's writes (in this
 * process or another) do not wait for a broker. A relay killed mid-pass leaves its messages
 * pending: they are published again, with the same ids, once its lease ends.
 *
 * `dbOrPath` is the application's better-sqlite3 `Database` (the relay then shares its
 * connection: keep the application's own transactions short, the relay waits for them), or a file
 * path: the outbox opens a connection of its own on first use (importing better-sqlite3 then, in
 * WAL mode), which `close()` ends, and the application writes with its own connection to the file.
 *
 * @example
 * ```ts
 * import Database from 'better-sqlite3';
 * import { sqliteOutbox } from 'idem/messaging';
 *
 * const db = new Database('./app.db', { timeout: 5000 });
 * db.pragma('journal_mode = WAL');
 * const outbox = sqliteOutbox(db, { table: 'outbox' });
 * const pay = db.transaction((orderId: number) => {
 *   db.prepare('UPDATE orders SET state = ? WHERE id = ?').run('paid', orderId);
 *   outbox.enqueueSync(db, { topic: 'orders.paid', key: `order-${orderId}`, payload: { orderId } });
 * });
 * pay(42);
 * ```
 */
export function sqliteOutbox<D extends SqliteOutboxDatabaseLike>(
  dbOrPath: D | string,
  options: SqliteOutboxOptions = {},
): SqliteOutbox<D> {
  return new SqliteOutboxImpl<D>(dbOrPath, options);
}

class SqliteOutboxImpl<D extends SqliteOutboxDatabaseLike> implements SqliteOutbox<D> {
  readonly dialect = DIALECT;
  readonly #sql: SqliteOutboxStatements;
  readonly #ops: OutboxOperations<Connection>;
  readonly #maxPayloadBytes: number;
  readonly #leaseMs: number;
  /** The enqueue statement prepared on each database the caller's transactions run on. */
  readonly #inserts = new WeakMap<object, SqliteOutboxStatementLike>();

  constructor(dbOrPath: D | string, options: SqliteOutboxOptions) {
    const table = options.table ?? 'idem_outbox';
    if (!TABLE_NAME.test(table) || table.toLowerCase().startsWith('sqlite_')) {
      throw outboxMisuse(
        DIALECT,
        `the table name ${JSON.stringify(table)} is not allowed: use 1 to 48 letters, digits and underscores, starting with a letter or underscore (and not with "sqlite_").`,
      );
    }
    this.#maxPayloadBytes = checkMaxPayloadBytes(DIALECT, options.maxPayloadBytes);
    this.#leaseMs = checkPositive('leaseMs', options.leaseMs, DEFAULT_LEASE_MS);
    const busyTimeoutMs = checkPositive('busyTimeoutMs', options.busyTimeoutMs, 5000);
    this.#sql = sqliteOutboxStatements(table);
    const path = typeof dbOrPath === 'string' ? dbOrPath : undefined;
    if (path === undefined && typeof (dbOrPath as Partial<SqliteOutboxDatabaseLike>)?.prepare !== 'function') {
      throw outboxMisuse(DIALECT, 'sqliteOutbox needs a better-sqlite3 Database or the path of a database file.');
    }
    this.#ops = new OutboxOperations<Connection>({
      dialect: DIALECT,
      factory: 'sqliteOutbox',
      misconfiguration: () => undefined,
      explain: busyError,
      given: path === undefined ? () => ({ db: dbOrPath as D }) : undefined,
      openOwn: () => openFile(path as string, busyTimeoutMs),
      prepare: (connection) => this.#prepare(connection),
    });
  }

  enqueueSync(tx: D, message: OutboxMessage): string {
    this.#ops.checkOpen('enqueue');
    const encoded = encodeMessage(DIALECT, message, this.#maxPayloadBytes, Date.now());
    try {
      this.#insert(tx, encoded);
    } catch (error) {
      throw this.#ops.failure('enqueue', error);
    }
    return encoded.id;
  }

  enqueue(tx: D, message: OutboxMessage): Promise<string> {
    try {
      return Promise.resolve(this.enqueueSync(tx, message));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async relay(input: RelayPassInput): Promise<RelayPassResult> {
    checkRelayInput(DIALECT, input);
    return this.#ops.run('relay', (connection) => this.#pass(connection, input));
  }

  async cleanup(beforeMs: number, limit?: number): Promise<number> {
    const most = checkCleanup(DIALECT, beforeMs, limit);
    return this.#ops.run('cleanup', ({ db, statements: s }) =>
      writeTransaction(db, () => s?.cleanup.run(beforeMs, most).changes ?? 0),
    );
  }

  async counts(): Promise<OutboxCounts> {
    return this.#ops.run('counts', ({ statements: s }) => {
      const row = s?.counts.get() as OutboxCounts;
      return { pending: Number(row.pending), published: Number(row.published), dead: Number(row.dead) };
    });
  }

  async dead(limit?: number): Promise<DeadMessage[]> {
    const most = checkDeadLimit(DIALECT, limit);
    return this.#ops.run('dead', ({ statements: s }) =>
      ((s?.dead.all(most) ?? []) as (PendingRow & { last_error: string | null })[]).map((row) => ({
        ...pendingOf(row),
        lastError: row.last_error ?? '',
      })),
    );
  }

  async revive(id: string): Promise<boolean> {
    checkReviveId(DIALECT, id);
    return this.#ops.run('revive', ({ db, statements: s }) =>
      writeTransaction(db, () => s?.revive.run(id).changes === 1),
    );
  }

  ensureSchema(): Promise<void> {
    return this.#ops.run('ensure the schema', () => undefined);
  }

  close(): Promise<void> {
    return this.#ops.close();
  }

  /** Writes the message on `tx`; creates the table there first if it is missing (then retries once). */
  #insert(tx: D, message: EncodedMessage): void {
    const { id, topic, key, payload, headers, nextAttemptAtMs, createdAtMs } = message;
    const values = [id, topic, key, asBuffer(payload), headers, nextAttemptAtMs, createdAtMs];
    for (let round = 1; ; round++) {
      try {
        let insert = this.#inserts.get(tx);
        if (insert === undefined) {
          insert = tx.prepare(this.#sql.enqueue);
          this.#inserts.set(tx, insert);
        }
        insert.run(...values);
        return;
      } catch (error) {
        if (round > 1 || !isMissingTable(error)) throw error;
        // Inside the caller's transaction the table commits (or rolls back) with it.
        this.#inserts.delete(tx);
        tx.exec(this.#sql.schema);
      }
    }
  }

  async #prepare(connection: Connection): Promise<void> {
    const { db } = connection;
    await writeTransaction(db, () => db.exec(this.#sql.schema));
    const statements = {} as Record<keyof SqliteOutboxStatements, SqliteOutboxStatementLike>;
    for (const [name, text] of Object.entries(this.#sql) as [keyof SqliteOutboxStatements, string][]) {
      if (name !== 'schema') statements[name] = db.prepare(text);
    }
    connection.statements = statements;
  }

  /**
   * One pass: lease the due messages (one short write transaction), publish them with no
   * transaction open while a timer renews the lease, then mark them (another short one). Only
   * rows the pass still holds are marked; if `publish` throws, the lease is given up at once.
   */
  async #pass(connection: Connection, input: RelayPassInput): Promise<RelayPassResult> {
    const { db } = connection;
    const s = connection.statements as Record<keyof SqliteOutboxStatements, SqliteOutboxStatementLike>;
    const token = randomUUID();
    const rows = await writeTransaction(db, () => {
      const wallMs = Date.now();
      const due = s.due.all(input.nowMs, wallMs, input.limit) as PendingRow[];
      for (const row of due) s.lease.run(token, wallMs + this.#leaseMs, row.seq);
      return due;
    });
    if (rows.length === 0) return EMPTY_PASS;
    const messages = rows.map(pendingOf);
    const renew = setInterval(
      () => {
        writeTransaction(db, () => s.extend.run(Date.now() + this.#leaseMs, token)).catch(() => {});
      },
      Math.max(1, Math.floor(this.#leaseMs / 3)),
    );
    let marks: PassMarks;
    try {
      marks = await publishMarks(messages, input);
    } catch (error) {
      clearInterval(renew);
      // Best effort: the lease would end by itself anyway.
      await writeTransaction(db, () => s.unlease.run(token)).catch(() => {});
      throw error;
    }
    clearInterval(renew);
    const marked = await writeTransaction(db, () => markHeld(s, marks, input.nowMs, token));
    return passResult(messages.length, marked);
  }
}

function publishMarks(messages: PendingMessage[], input: RelayPassInput): Promise<PassMarks> {
  return callerCode(async () => marksOf(DIALECT, messages, await input.publish(messages), input));
}

/** Writes `marks` for the rows the pass `token` still holds; returns the marks it could write. */
function markHeld(
  s: Record<keyof SqliteOutboxStatements, SqliteOutboxStatementLike>,
  marks: PassMarks,
  nowMs: number,
  token: string,
): PassMarks {
  const published = marks.published.filter((seq) => s.markPublished.run(nowMs, seq, token).changes === 1);
  const failed = marks.failed.filter((mark) => {
    const state = mark.nextAttemptAtMs === undefined ? 'dead' : 'pending';
    return (
      s.markFailed.run(state, mark.attempts, mark.nextAttemptAtMs ?? null, mark.error, mark.seq, token).changes === 1
    );
  });
  return { published, failed };
}

function isMissingTable(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return code === 'SQLITE_ERROR' && typeof message === 'string' && message.startsWith('no such table');
}

/** The longest a Node timer waits, in ms: past it, Node fires after 1 ms (the lease's renewal would spin). */
const MAX_TIMER_MS = 2 ** 31 - 1;

function checkPositive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (Number.isSafeInteger(value) && value >= 1 && value <= MAX_TIMER_MS) return value;
  throw outboxMisuse(
    DIALECT,
    `${name} must be a whole number of ms of at least 1 and at most ${MAX_TIMER_MS}, got ${String(value)}.`,
  );
}

/** The locked-database message, for SQLITE_BUSY and SQLITE_LOCKED; `undefined` for any other error. */
function busyError(operation: string, error: unknown): IdempotencyError | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !(code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))) {
    return undefined;
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new IdempotencyError(
    ErrorCode.STORE_UNAVAILABLE,
    `${outboxLabel(DIALECT)} ${operation} failed: the database is locked (${code}): ${reason}. Nothing was changed; retry, raise the busy timeout, or find the process that holds a long write transaction on this file.`,
    { cause: error },
  );
}

async function openFile(path: string, busyTimeoutMs: number): Promise<OwnClient<Connection>> {
  const { default: Database } = await importDriver(
    `${DIALECT} outbox`,
    'better-sqlite3@12',
    'your own better-sqlite3 Database',
    () => import('better-sqlite3'),
  );
  const db = new Database(path, { timeout: busyTimeoutMs });
  try {
    await switchToWal(db, busyTimeoutMs);
  } catch (error) {
    db.close();
    throw error;
  }
  return {
    client: { db },
    end: async () => {
      db.close();
    },
  };
}
