import type { PoolOptions } from 'mysql2/promise';
import { asBuffer } from '../../store-kit/as-buffer.js';
import { importDriver } from '../../store-kit/driver.js';
import { checkIdentifier } from '../../store-kit/identifier.js';
import type { OwnClient } from '../../store-kit/lazy-client.js';
import { mysqlMisconfiguration } from '../../stores/mysql/errors.js';
import { lockedPass, type PassConnection } from './locked-pass.js';
import { type MysqlOutboxStatements, mysqlOutboxStatements } from './mysql-outbox-sql.js';
import type {
  DeadMessage,
  OutboxCounts,
  OutboxMessage,
  OutboxStore,
  RelayPassInput,
  RelayPassResult,
} from './outbox.js';
import { OutboxOperations, withRetries } from './outbox-operations.js';
import {
  checkCleanup,
  checkDeadLimit,
  checkMaxPayloadBytes,
  checkRelayInput,
  checkReviveId,
  encodeMessage,
  outboxMisuse,
  type PassMarks,
  type PendingRow,
  pendingOf,
  textOf,
} from './outbox-rules.js';

/** What the outbox passes to `query`: a subset of `mysql2`'s `QueryOptions`. */
export interface MysqlOutboxQuery {
  sql: string;
  /** Values for the `?` placeholders in `sql` (an array value fills `IN (?)`). */
  values?: unknown[];
  /** Always false: rows are read as flat objects, whatever the pool's default. */
  rowsAsArray: boolean;
  /** Always false, for the same reason. */
  nestTables: boolean;
}

/**
 * The part of a `mysql2/promise` connection the outbox uses: a `Connection`, or a
 * `PoolConnection` checked out of a pool, is one. The caller's transaction runs on it
 * (`enqueue(tx, ...)`). `query` resolves to `[rows, fields]` or `[{ affectedRows }, undefined]`.
 */
export interface MysqlOutboxConnectionLike {
  query(options: MysqlOutboxQuery): Promise<[unknown, unknown]>;
}

/** A connection checked out of a pool: `release` gives it back, `destroy` closes it instead. */
export interface MysqlOutboxPooledConnectionLike extends MysqlOutboxConnectionLike {
  release(): void;
  destroy(): void;
}

/** A pool, such as `mysql2/promise`'s: each relay pass runs on a connection checked out of it. */
export interface MysqlOutboxPoolLike extends MysqlOutboxConnectionLike {
  getConnection(): Promise<MysqlOutboxPooledConnectionLike>;
}

export interface MysqlOutboxOptions {
  /**
   * The outbox table, in the connection's database: letters, digits and underscores, at most 64
   * characters. Created on first use if missing. Default `idem_outbox`.
   */
  table?: string;
  /**
   * The largest payload `enqueue` accepts, in bytes (1 to 64 MiB). Default 1 MiB. It is sent as
   * hex in the statement text: keep it under half the server's `max_allowed_packet`.
   */
  maxPayloadBytes?: number;
  /** With a URL: the most connections the outbox's own pool opens. Default 4. */
  maxConnections?: number;
  /** With a URL: how long to wait for a connection to open, in ms. Default 3000. */
  connectTimeoutMs?: number;
}

const DIALECT = 'mysql';
const MAX_TABLE_LENGTH = 64;
/** ER_LOCK_DEADLOCK: InnoDB rolled the victim's whole transaction back, so it may run again. */
const ER_LOCK_DEADLOCK = 1213;
const isRetryable = (error: unknown) => (error as { errno?: unknown } | null)?.errno === ER_LOCK_DEADLOCK;

/**
 * The transactional outbox in MySQL 8 or MariaDB 10.6+ (InnoDB), through `mysql2/promise`.
 * `enqueue(connection, message)` writes the message with the caller's connection, inside the
 * transaction the caller began on it, so the message exists if and only if that transaction
 * commits. A relay pass runs on a connection of the pool, in READ COMMITTED: START TRANSACTION;
 * lock due messages `FOR UPDATE SKIP LOCKED`; publish; mark them; COMMIT. A pass InnoDB picks as
 * a deadlock victim before it published runs again (up to 5 times in all).
 *
 * `poolOrUrl` is a `mysql2/promise` Pool (left open by `close()`) or a `mysql://` URL (the outbox
 * opens a pool of its own on first use, importing `mysql2` then). The table is created on first
 * use on a pool connection: never in the caller's transaction, where CREATE TABLE would commit it.
 *
 * @example
 * ```ts
 * import mysql from 'mysql2/promise';
 * import { mysqlOutbox } from 'idem/messaging';
 *
 * const pool = mysql.createPool({ uri: process.env.MYSQL_URL });
 * const outbox = mysqlOutbox(pool, { table: 'outbox' });
 * const connection = await pool.getConnection();
 * try {
 *   await connection.beginTransaction();
 *   await connection.query('UPDATE orders SET state = ? WHERE id = ?', ['paid', 42]);
 *   await outbox.enqueue(connection, { topic: 'orders.paid', key: 'order-42', payload: { orderId: 42 } });
 *   await connection.commit();
 * } catch (error) {
 *   await connection.rollback();
 *   throw error;
 * } finally {
 *   connection.release();
 * }
 * ```
 */
export function mysqlOutbox(
  poolOrUrl: MysqlOutboxPoolLike | string,
  options: MysqlOutboxOptions = {},
): OutboxStore<MysqlOutboxConnectionLike> {
  return new MysqlOutbox(poolOrUrl, options);
}

type Run = (sql: string, values?: unknown[]) => Promise<unknown>;

/** Runs `sql` on `db` with flat rows; resolves to the rows, or to the result of a change. */
function runOn(db: MysqlOutboxConnectionLike): Run {
  return async (sql, values) => (await db.query({ sql, values, rowsAsArray: false, nestTables: false }))[0];
}

function affected(result: unknown): number {
  return Number((result as { affectedRows?: number | string }).affectedRows ?? 0);
}

class MysqlOutbox implements OutboxStore<MysqlOutboxConnectionLike> {
  readonly dialect = DIALECT;
  readonly #table: string;
  readonly #sql: MysqlOutboxStatements;
  readonly #ops: OutboxOperations<MysqlOutboxPoolLike>;
  readonly #maxPayloadBytes: number;

  constructor(poolOrUrl: MysqlOutboxPoolLike | string, options: MysqlOutboxOptions) {
    this.#table = options.table ?? 'idem_outbox';
    checkIdentifier(`${DIALECT} outbox`, 'table', this.#table, MAX_TABLE_LENGTH);
    this.#maxPayloadBytes = checkMaxPayloadBytes(DIALECT, options.maxPayloadBytes);
    this.#sql = mysqlOutboxStatements(this.#table);
    const url = typeof poolOrUrl === 'string' ? poolOrUrl : undefined;
    if (url === undefined && typeof (poolOrUrl as Partial<MysqlOutboxPoolLike>)?.getConnection !== 'function') {
      throw outboxMisuse(
        DIALECT,
        'mysqlOutbox needs a mysql2/promise Pool (with getConnection()) or a mysql:// URL: a relay pass runs on a connection of its own.',
      );
    }
    this.#ops = new OutboxOperations<MysqlOutboxPoolLike>({
      dialect: DIALECT,
      factory: 'mysqlOutbox',
      misconfiguration: mysqlMisconfiguration,
      given: url === undefined ? (poolOrUrl as MysqlOutboxPoolLike) : undefined,
      openOwn: () => openPool(url as string, options),
      prepare: (pool) => this.#migrate(pool),
    });
  }

  async enqueue(tx: MysqlOutboxConnectionLike, message: OutboxMessage): Promise<string> {
    this.#ops.checkOpen('enqueue');
    const encoded = encodeMessage(DIALECT, message, this.#maxPayloadBytes, Date.now());
    await this.ensureSchema();
    const { id, topic, key, payload, headers, nextAttemptAtMs, createdAtMs } = encoded;
    const values = [bytes(id), bytes(topic), key === null ? null : bytes(key), asBuffer(payload), bytes(headers)];
    try {
      await runOn(tx)(this.#sql.enqueue, [...values, nextAttemptAtMs, createdAtMs]);
    } catch (error) {
      throw this.#ops.failure('enqueue', error);
    }
    return id;
  }

  async relay(input: RelayPassInput): Promise<RelayPassResult> {
    checkRelayInput(DIALECT, input);
    return this.#ops.run('relay', (pool) => lockedPass(DIALECT, () => this.#connect(pool), input, isRetryable));
  }

  async cleanup(beforeMs: number, limit?: number): Promise<number> {
    const most = checkCleanup(DIALECT, beforeMs, limit);
    return this.#ops.run('cleanup', (pool) =>
      withRetries(isRetryable, () =>
        this.#inTransaction(pool, async (run) => affected(await run(this.#sql.cleanup, [beforeMs, most]))),
      ),
    );
  }

  async counts(): Promise<OutboxCounts> {
    return this.#ops.run('counts', async (pool) => {
      const rows = (await runOn(pool)(this.#sql.counts)) as { state: string; n: number | string }[];
      const counts: OutboxCounts = { pending: 0, published: 0, dead: 0 };
      for (const row of rows) counts[row.state as keyof OutboxCounts] = Number(row.n);
      return counts;
    });
  }

  async dead(limit?: number): Promise<DeadMessage[]> {
    const most = checkDeadLimit(DIALECT, limit);
    return this.#ops.run('dead', async (pool) => {
      const rows = (await runOn(pool)(this.#sql.dead, [most])) as (PendingRow & { last_error: Buffer | null })[];
      return rows.map((row) => ({
        ...pendingOf(row),
        lastError: row.last_error === null ? '' : textOf(row.last_error),
      }));
    });
  }

  async revive(id: string): Promise<boolean> {
    checkReviveId(DIALECT, id);
    return this.#ops.run('revive', async (pool) =>
      withRetries(isRetryable, async () => affected(await runOn(pool)(this.#sql.revive, [bytes(id)])) === 1),
    );
  }

  ensureSchema(): Promise<void> {
    return this.#ops.run('ensure the schema', () => undefined);
  }

  close(): Promise<void> {
    return this.#ops.close();
  }

  async #migrate(pool: MysqlOutboxPoolLike): Promise<void> {
    const run = runOn(pool);
    if (((await run(this.#sql.find, [this.#table])) as unknown[]).length > 0) return;
    await run(this.#sql.create);
  }

  /** Runs `body` in a READ COMMITTED transaction of its own; a failed connection is destroyed, not reused. */
  async #inTransaction<T>(pool: MysqlOutboxPoolLike, body: (run: Run) => Promise<T>): Promise<T> {
    const connection = await pool.getConnection();
    const run = runOn(connection);
    try {
      for (const statement of this.#sql.beginPass) await run(statement);
      const result = await body(run);
      await run('COMMIT');
      connection.release();
      return result;
    } catch (error) {
      // Closing the connection rolls back whatever it held, even when a ROLLBACK could not be sent.
      connection.destroy();
      throw error;
    }
  }

  /** A pool connection for one relay pass, with the pass's statements. */
  async #connect(pool: MysqlOutboxPoolLike): Promise<PassConnection> {
    const connection = await pool.getConnection();
    const run = runOn(connection);
    const sql = this.#sql;
    return {
      begin: async () => {
        for (const statement of sql.beginPass) await run(statement);
      },
      claim: async (nowMs, limit) => (await run(sql.claim, [nowMs, limit])) as PendingRow[],
      mark: (marks, nowMs) => markOn(run, sql, marks, nowMs),
      commit: async () => {
        await run('COMMIT');
      },
      rollback: async () => {
        await run('ROLLBACK');
      },
      release: (destroy) => (destroy ? connection.destroy() : connection.release()),
    };
  }
}

async function markOn(run: Run, sql: MysqlOutboxStatements, marks: PassMarks, nowMs: number): Promise<void> {
  if (marks.published.length > 0) await run(sql.markPublished, [nowMs, marks.published]);
  for (const mark of marks.failed) {
    const state = mark.nextAttemptAtMs === undefined ? 'dead' : 'pending';
    await run(sql.markFailed, [state, mark.attempts, mark.nextAttemptAtMs ?? null, bytes(mark.error), mark.seq]);
  }
}

/** Text as its UTF-8 bytes, for the VARBINARY and BLOB columns. */
function bytes(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

async function openPool(url: string, options: MysqlOutboxOptions): Promise<OwnClient<MysqlOutboxPoolLike>> {
  const { default: mysql } = await importDriver(
    `${DIALECT} outbox`,
    'mysql2',
    'your own mysql2 Pool',
    () => import('mysql2/promise'),
  );
  const config: PoolOptions = {
    uri: url,
    connectionLimit: options.maxConnections ?? 4,
    connectTimeout: options.connectTimeoutMs ?? 3000,
    enableKeepAlive: true,
    supportBigNumbers: true,
    bigNumberStrings: false,
  };
  const own = mysql.createPool(config);
  return { client: own as unknown as MysqlOutboxPoolLike, end: () => own.end() };
}
