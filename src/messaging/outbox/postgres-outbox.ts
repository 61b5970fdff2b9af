import type { PoolConfig } from 'pg';
import { asBuffer } from '../../store-kit/as-buffer.js';
import { importDriver } from '../../store-kit/driver.js';
import { checkIdentifier } from '../../store-kit/identifier.js';
import type { OwnClient } from '../../store-kit/lazy-client.js';
import { postgresMisconfiguration } from '../../stores/postgres/errors.js';
import { lockedPass, type PassConnection } from './locked-pass.js';
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
} from './outbox-rules.js';
import { type Named, type PostgresOutboxStatements, postgresOutboxStatements } from './postgres-outbox-sql.js';

/** What a `pg` query resolves to, as far as the outbox reads it. */
export interface PgOutboxResultLike {
  rows: unknown[];
  rowCount: number | null;
}

/**
 * The part of a `pg` connection the outbox uses: a `pg.Client`, or a `pg.PoolClient` checked out
 * of a pool, is one. The caller's transaction runs on it (`enqueue(tx, ...)`).
 */
export interface PgOutboxClientLike {
  /** Runs a statement; with a `name`, `pg` prepares it once per connection and reuses the plan. */
  query(config: { name?: string; text: string; values?: unknown[] }): Promise<PgOutboxResultLike>;
  /** Runs a statement, or several separated by `;` when no values are given (the migration does). */
  query(text: string, values?: unknown[]): Promise<PgOutboxResultLike>;
}

/** A connection checked out of a pool: `release()` gives it back, `release(true)` destroys it. */
export interface PgOutboxPooledClientLike extends PgOutboxClientLike {
  release(destroy?: boolean | Error): void;
}

/** A pool, such as `pg.Pool`: each relay pass runs on a connection checked out of it. */
export interface PgOutboxPoolLike extends PgOutboxClientLike {
  connect(): Promise<PgOutboxPooledClientLike>;
}

export interface PostgresOutboxOptions {
  /**
   * The outbox table, in the connection's `search_path`: letters, digits and underscores, at most
   * 48 characters (its index names add a suffix within PostgreSQL's 63). Created on first use if
   * missing. Default `idem_outbox`.
   */
  table?: string;
  /** The largest payload `enqueue` accepts, in bytes (1 to 64 MiB). Default 1 MiB. */
  maxPayloadBytes?: number;
  /** With a URL: the most connections the outbox's own pool opens. Default 4. */
  maxConnections?: number;
  /** With a URL: how long to wait for a connection, in ms. Default 5000. */
  connectTimeoutMs?: number;
}

const DIALECT = 'postgres';
const MAX_TABLE_LENGTH = 48;
// serialization_failure and deadlock_detected: the server rolled the transaction back.
const isRetryable = (error: unknown) => ['40001', '40P01'].includes(String((error as { code?: unknown })?.code));

/**
 * The transactional outbox in PostgreSQL, through `pg`. `enqueue(client, message)` writes the
 * message with the caller's connection, inside the transaction the caller opened on it (BEGIN ...
 * COMMIT), so the message exists if and only if that transaction commits. A relay pass runs on a
 * connection of the outbox's pool: BEGIN; lock due messages `FOR UPDATE SKIP LOCKED`; publish;
 * mark them; COMMIT. Many relays (threads, processes, machines) share one table, each message
 * locked by one pass at a time.
 *
 * `poolOrUrl` is a `pg.Pool` (left open by `close()`) or a `postgres://` URL (the outbox opens a
 * pool of its own on first use, importing `pg` then, and `close()` ends it). The table is created
 * on first use by any method, on a pool connection, never in the caller's transaction; call
 * `ensureSchema()` at startup to do it before the first request.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { postgresOutbox } from 'idem/messaging';
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const outbox = postgresOutbox(pool, { table: 'outbox' });
 * const client = await pool.connect();
 * try {
 *   await client.query('BEGIN');
 *   await client.query('UPDATE orders SET state = $1 WHERE id = $2', ['paid', 42]);
 *   await outbox.enqueue(client, { topic: 'orders.paid', key: 'order-42', payload: { orderId: 42 } });
 *   await client.query('COMMIT');
 * } catch (error) {
 *   await client.query('ROLLBACK');
 *   throw error;
 * } finally {
 *   client.release();
 * }
 * ```
 */
export function postgresOutbox(
  poolOrUrl: PgOutboxPoolLike | string,
  options: PostgresOutboxOptions = {},
): OutboxStore<PgOutboxClientLike> {
  return new PostgresOutbox(poolOrUrl, options);
}

class PostgresOutbox implements OutboxStore<PgOutboxClientLike> {
  readonly dialect = DIALECT;
  readonly #sql: PostgresOutboxStatements;
  readonly #ops: OutboxOperations<PgOutboxPoolLike>;
  readonly #maxPayloadBytes: number;

  constructor(poolOrUrl: PgOutboxPoolLike | string, options: PostgresOutboxOptions) {
    const table = options.table ?? 'idem_outbox';
    checkIdentifier(`${DIALECT} outbox`, 'table', table, MAX_TABLE_LENGTH);
    this.#maxPayloadBytes = checkMaxPayloadBytes(DIALECT, options.maxPayloadBytes);
    this.#sql = postgresOutboxStatements(table);
    const url = typeof poolOrUrl === 'string' ? poolOrUrl : undefined;
    if (url === undefined && typeof (poolOrUrl as Partial<PgOutboxPoolLike>)?.connect !== 'function') {
      throw outboxMisuse(
        DIALECT,
        'postgresOutbox needs a pg Pool (with connect()) or a postgres:// URL: a relay pass runs on a connection of its own.',
      );
    }
    this.#ops = new OutboxOperations<PgOutboxPoolLike>({
      dialect: DIALECT,
      factory: 'postgresOutbox',
      misconfiguration: postgresMisconfiguration,
      given: url === undefined ? (poolOrUrl as PgOutboxPoolLike) : undefined,
      openOwn: () => openPool(url as string, options),
      prepare: (pool) => this.#migrate(pool),
    });
  }

  async enqueue(tx: PgOutboxClientLike, message: OutboxMessage): Promise<string> {
    this.#ops.checkOpen('enqueue');
    const encoded = encodeMessage(DIALECT, message, this.#maxPayloadBytes, Date.now());
    await this.ensureSchema();
    const { id, topic, key, payload, headers, nextAttemptAtMs, createdAtMs } = encoded;
    try {
      await tx.query({
        ...this.#sql.enqueue,
        values: [id, topic, key, asBuffer(payload), headers, nextAttemptAtMs, createdAtMs],
      });
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
    return this.#ops.run('cleanup', async (pool) => {
      const result = await withRetries(isRetryable, () => pool.query(this.#named(this.#sql.cleanup, [beforeMs, most])));
      return result.rowCount ?? 0;
    });
  }

  async counts(): Promise<OutboxCounts> {
    return this.#ops.run('counts', async (pool) => {
      const { rows } = await pool.query(this.#named(this.#sql.counts, []));
      const row = rows[0] as Record<keyof OutboxCounts, string>;
      return { pending: Number(row.pending), published: Number(row.published), dead: Number(row.dead) };
    });
  }

  async dead(limit?: number): Promise<DeadMessage[]> {
    const most = checkDeadLimit(DIALECT, limit);
    return this.#ops.run('dead', async (pool) => {
      const { rows } = await pool.query(this.#named(this.#sql.dead, [most]));
      return (rows as (PendingRow & { last_error: string | null })[]).map((row) => ({
        ...pendingOf(row),
        lastError: row.last_error ?? '',
      }));
    });
  }

  async revive(id: string): Promise<boolean> {
    checkReviveId(DIALECT, id);
    return this.#ops.run(
      'revive',
      async (pool) => (await pool.query(this.#named(this.#sql.revive, [id]))).rowCount === 1,
    );
  }

  ensureSchema(): Promise<void> {
    return this.#ops.run('ensure the schema', () => undefined);
  }

  close(): Promise<void> {
    return this.#ops.close();
  }

  #named(statement: Named, values: unknown[]) {
    return { name: statement.name, text: statement.text, values };
  }

  async #migrate(pool: PgOutboxPoolLike): Promise<void> {
    const { rows } = await pool.query(this.#sql.exists, [this.#sql.table, this.#sql.lastIndex]);
    if ((rows[0] as { ready?: boolean } | undefined)?.ready === true) return;
    await pool.query(this.#sql.migrate);
  }

  /** A pool connection for one relay pass, with the pass's statements. */
  async #connect(pool: PgOutboxPoolLike): Promise<PassConnection> {
    const client = await pool.connect();
    const sql = this.#sql;
    const run = (statement: Named, values: unknown[]) => client.query(this.#named(statement, values));
    return {
      begin: async () => {
        await client.query(sql.begin);
      },
      claim: async (nowMs, limit) => (await run(sql.claim, [nowMs, limit])).rows as PendingRow[],
      mark: (marks, nowMs) => markOn(run, sql, marks, nowMs),
      commit: async () => {
        await client.query('COMMIT');
      },
      rollback: async () => {
        await client.query('ROLLBACK');
      },
      release: (destroy) => client.release(destroy),
    };
  }
}

async function markOn(
  run: (statement: Named, values: unknown[]) => Promise<PgOutboxResultLike>,
  sql: PostgresOutboxStatements,
  marks: PassMarks,
  nowMs: number,
): Promise<void> {
  if (marks.published.length > 0) await run(sql.markPublished, [marks.published, nowMs]);
  if (marks.failed.length === 0) return;
  await run(sql.markFailed, [
    marks.failed.map((mark) => mark.seq),
    marks.failed.map((mark) => mark.attempts),
    marks.failed.map((mark) => mark.nextAttemptAtMs ?? null),
    marks.failed.map((mark) => mark.error),
  ]);
}

async function openPool(url: string, options: PostgresOutboxOptions): Promise<OwnClient<PgOutboxPoolLike>> {
  const { default: pg } = await importDriver(`${DIALECT} outbox`, 'pg', 'your own pg Pool', () => import('pg'));
  const config: PoolConfig = {
    connectionString: url,
    max: options.maxConnections ?? 4,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    keepAlive: true,
  };
  const own = new pg.Pool(config);
  // An idle connection that drops is reported on the pool; without a listener the process would crash.
  own.on('error', () => {});
  return { client: own as unknown as PgOutboxPoolLike, end: () => own.end() };
}
