/**
 * The journal of the MySQL / MariaDB store. A step's `append` is one statement. Starting a journal
 * afresh (entry 0) and `reopen` change the record's standing and the journal together, which no
 * single MySQL statement can (no data-modifying CTEs), so each runs as one transaction on a
 * connection of its own, taken from the pool: once per run, not per step.
 */
import type { AppendInput, JournalEntry, ReopenInput, RunListOptions, RunPage } from '../../core/journal.js';
import { asBuffer, checkListLimit, invalidOptions } from '../../store-kit/index.js';
import type { MysqlConnectionLike, MysqlPoolLike, MysqlQuery, MysqlValue } from './client.js';
import { type MysqlJournalStatements, mysqlJournalStatements } from './journal-sql.js';
import { affectedRows, bytesOf, ER_LOCK_DEADLOCK, errno, matchedRows, textOf } from './values.js';

/** Builds the store's query options (placeholders, timeout, row shape) for a statement. */
export type QueryOf = (sql: string, values: Record<string, MysqlValue>) => MysqlQuery;

/** Runs one statement of a transaction, on its connection. */
type Run = (sql: string, values: Record<string, MysqlValue>) => Promise<[unknown, unknown]>;

/** A journal row as `mysql2` returns it: BIGINT as number or string, LONGBLOB as Buffer. */
interface JournalRow {
  seq: number | string;
  data: Buffer;
  at_ms: number | string;
}

/** How often a transaction InnoDB picked as a deadlock victim runs, in all. */
/**
 * Deadlock victims run again, up to this many times in all. Journals started at once for many runs
 * take gap locks in the journal's index against each other; a short random pause before each new
 * try keeps the victims from meeting again.
 */
const MAX_TRANSACTION_ATTEMPTS = 10;

export class MysqlJournal {
  readonly #store: string;
  readonly #sql: MysqlJournalStatements;
  readonly #query: QueryOf;

  /** `store` names the store in messages; `table` is the records table, already validated. */
  constructor(store: string, table: string, query: QueryOf) {
    this.#store = store;
    this.#sql = mysqlJournalStatements(table);
    this.#query = query;
  }

  async append(pool: MysqlPoolLike, input: AppendInput): Promise<boolean> {
    const key = bytesOf(input.key);
    const token = bytesOf(input.token);
    const data = asBuffer(input.data);
    if (input.seq === 0) {
      return this.#transaction(pool, 'append', async (run) => {
        const [held] = await run(this.#sql.holder, { key, token, nowMs: input.nowMs });
        if ((held as unknown[]).length === 0) return false;
        await run(this.#sql.clear, { key });
        await run(this.#sql.insertFirst, { key, data, nowMs: input.nowMs });
        return true;
      });
    }
    const values = { key, token, seq: input.seq, data, nowMs: input.nowMs };
    const [header] = await pool.query(this.#query(this.#sql.append, values));
    return affectedRows(header) === 1;
  }

  async entries(pool: MysqlPoolLike, key: string): Promise<JournalEntry[]> {
    const [rows] = await pool.query(this.#query(this.#sql.entries, { key: bytesOf(key) }));
    return (rows as JournalRow[]).map((row) => ({
      seq: Number(row.seq),
      // A copy, so the entry does not keep the driver's whole packet buffer alive.
      data: new Uint8Array(row.data),
      atMs: Number(row.at_ms),
    }));
  }

  async reopen(pool: MysqlPoolLike, input: ReopenInput): Promise<boolean> {
    const key = bytesOf(input.key);
    return this.#transaction(pool, 'reopen', async (run) => {
      const [header] = await run(this.#sql.reopen, {
        key,
        expectedToken: bytesOf(input.expectedToken),
        token: bytesOf(input.token),
        nowMs: input.nowMs,
        leaseExpiresAtMs: input.leaseExpiresAtMs,
        expiresAtMs: input.expiresAtMs,
      });
      if (matchedRows(header) !== 1) return false;
      await run(this.#sql.clear, { key });
      return true;
    });
  }

  async runs(pool: MysqlPoolLike, options: RunListOptions): Promise<RunPage> {
    const limit = checkListLimit(this.#store, options.limit);
    const [rows] = await pool.query(
      this.#query(this.#sql.runs, {
        cursor: options.cursor === undefined ? null : bytesOf(options.cursor),
        dueBy: options.dueBy ?? null,
        limit: limit + 1,
      }),
    );
    const keys = (rows as { idem_key: Buffer | string }[]).map((row) => textOf(row.idem_key));
    return { keys: keys.slice(0, limit), nextCursor: keys.length > limit ? keys[limit - 1] : undefined };
  }

  /**
   * Runs `body` as one transaction on a connection of its own: committed when it returns true,
   * rolled back when it returns false. When it throws, the connection is destroyed rather than
   * given back (closing it rolls back whatever the transaction did, even when a ROLLBACK could
   * not be sent); a deadlock victim, rolled back whole by InnoDB, runs again on a fresh one.
   */
  async #transaction(pool: MysqlPoolLike, operation: string, body: (run: Run) => Promise<boolean>): Promise<boolean> {
    if (pool.getConnection === undefined) {
      throw invalidOptions(
        this.#store,
        `${operation}() runs a transaction, which needs a pool with getConnection(); the pool given has none (a single connection?): give a mysql2 pool or a url.`,
      );
    }
    for (let attempt = 1; ; attempt++) {
      const connection = await pool.getConnection();
      try {
        const kept = await this.#inTransaction(connection, body);
        connection.release();
        return kept;
      } catch (error) {
        connection.destroy();
        if (attempt >= MAX_TRANSACTION_ATTEMPTS || errno(error) !== ER_LOCK_DEADLOCK) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt));
      }
    }
  }

  async #inTransaction(connection: MysqlConnectionLike, body: (run: Run) => Promise<boolean>): Promise<boolean> {
    const run: Run = (sql, values) => connection.query(this.#query(sql, values));
    await run('START TRANSACTION', {});
    const kept = await body(run);
    await run(kept ? 'COMMIT' : 'ROLLBACK', {});
    return kept;
  }
}
