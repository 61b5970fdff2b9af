import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PoolClient } from 'pg';
import type { JournalStore } from '../../src/core/journal.js';
import { PostgresStore } from '../../src/stores/postgres/index.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { postgresSteps, type StepDatabase, sqliteSteps } from '../../src/workflow/index.js';
import { describe, servers, Unreachable } from '../store-targets.js';

export const WORKFLOW_DATABASES = ['sqlite', 'postgres'] as const;
export type WorkflowDatabaseName = (typeof WORKFLOW_DATABASES)[number];

/** Tables the workflow part owns: every PostgreSQL table whose name starts so is dropped before and after. */
export const TABLE_PREFIX = 'idem_bench_wf';
/** The business table every variant's writing steps insert into. */
const ORDERS_TABLE = `${TABLE_PREFIX}_orders`;
/** The floor's journal: one row per step. */
const JOURNAL_TABLE = `${TABLE_PREFIX}_journal`;
/** The Idem store's table (its journal is `<table>_journal`, under the same prefix). */
export const IDEM_TABLE = `${TABLE_PREFIX}_idem`;
/** The step rows of the atomic steps, beside the orders they record (`postgresSteps`, `sqliteSteps`). */
const STEPS_TABLE = `${TABLE_PREFIX}_steps`;

/** How long to wait for a server before calling it unreachable, in ms. */
const CONNECT_TIMEOUT_MS = 2000;

/** An Idem store that keeps journals, with its tables created up front. */
export type IdemStore = JournalStore & { migrate(): Promise<void> };

/**
 * The business write as an atomic SQL step: a step database on the business database (its rows
 * in the business pool's database, or the business file), and the INSERT made on the connection
 * that holds the step's transaction, so the order and the step's row commit together.
 */
export interface AtomicWrites {
  /** `postgresSteps` on the business pool, or `sqliteSteps` on the business file's connection. */
  steps: StepDatabase<unknown>;
  /** The business write of one step on `tx`, what the step database gave the step's `fn`. */
  write(tx: unknown, runId: string, step: number): Promise<void>;
}

/**
 * One database the workflows run on, with its business table and the floor's journal table. Every
 * pool is 10 connections, the size of the Idem PostgreSQL store's own pool and of DBOS's: the
 * business writes go through one pool, each durable variant's records through one of its own.
 */
export interface WorkflowDatabase {
  name: WorkflowDatabaseName;
  /** Where the rows live, for the report. */
  where: string;
  /** The business write of one step: INSERT one row (run, step, amount) into the orders table. */
  write(runId: string, step: number): Promise<void>;
  /** The floor's store write for one step: INSERT one row (run, seq, data, time) into the journal table. */
  journal(runId: string, seq: number, data: Uint8Array): Promise<void>;
  /** The business write as an atomic step, for the `idem tx` variant. */
  atomicWrites: AtomicWrites;
  /** How many business rows run `runId` wrote (for the checks). */
  ordersOf(runId: string): Promise<number>;
  /** A new Idem store on this database, for the Idem variants (its caller closes it). */
  idemStore(): IdemStore;
  /** Closes every client and drops everything the run wrote. */
  close(): Promise<void>;
}

/** Opens one database, or throws `Unreachable`. */
export function openWorkflowDatabase(name: WorkflowDatabaseName): Promise<WorkflowDatabase> {
  return name === 'sqlite' ? openSqlite() : openPostgres();
}

async function openSqlite(): Promise<WorkflowDatabase> {
  const { default: Database } = await import('better-sqlite3');
  const directory = mkdtempSync(join(tmpdir(), 'idem-bench-wf-'));
  // Separate files, as the Idem store keeps its own: the settings are the store's (WAL, synchronous
  // NORMAL, its checkpoint size), so the floor's journal costs what a store's write costs.
  const open = (file: string) => {
    const db = new Database(join(directory, file));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('wal_autocheckpoint = 4000');
    return db;
  };
  const business = open('business.db');
  const journalDb = open('journal.db');
  business.exec(
    `CREATE TABLE ${ORDERS_TABLE} (run_id TEXT NOT NULL, step INTEGER NOT NULL, amount INTEGER NOT NULL, PRIMARY KEY (run_id, step))`,
  );
  journalDb.exec(
    `CREATE TABLE ${JOURNAL_TABLE} (run_id TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, at_ms INTEGER NOT NULL, PRIMARY KEY (run_id, seq))`,
  );
  // Inserts one business row. ?1 run id, ?2 step, ?3 amount. Returns nothing.
  const insertOrder = business.prepare(`INSERT INTO ${ORDERS_TABLE} (run_id, step, amount) VALUES (?, ?, ?)`);
  // Appends one journal entry. ?1 run id, ?2 seq, ?3 data, ?4 time in ms. Returns nothing.
  const insertEntry = journalDb.prepare(`INSERT INTO ${JOURNAL_TABLE} (run_id, seq, data, at_ms) VALUES (?, ?, ?, ?)`);
  // Counts a run's business rows. ?1 run id. Returns { n }.
  const countOrders = business.prepare(`SELECT count(*) AS n FROM ${ORDERS_TABLE} WHERE run_id = ?`);
  return {
    name: 'sqlite',
    where: `${directory} (WAL, synchronous NORMAL; business with the atomic steps' rows, floor journal and Idem store in separate files)`,
    async write(runId, step) {
      insertOrder.run(runId, step, 500);
    },
    async journal(runId, seq, data) {
      insertEntry.run(runId, seq, data, Date.now());
    },
    atomicWrites: {
      steps: sqliteSteps(business, { table: STEPS_TABLE }),
      // sqliteSteps gives fn the connection it was made on, `business`, where insertOrder is prepared.
      async write(_tx, runId, step) {
        insertOrder.run(runId, step, 500);
      },
    },
    async ordersOf(runId) {
      return (countOrders.get(runId) as { n: number }).n;
    },
    idemStore() {
      return new SqliteStore({ path: join(directory, 'idem.db'), table: IDEM_TABLE });
    },
    async close() {
      business.close();
      journalDb.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

async function openPostgres(): Promise<WorkflowDatabase> {
  const { default: pg } = await import('pg');
  const pool = (max: number) => {
    const created = new pg.Pool({
      connectionString: servers.postgres,
      max,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    created.on('error', () => {});
    return created;
  };
  const business = pool(10);
  const journalPool = pool(10);
  try {
    await dropOwnTables(business);
  } catch (error) {
    await Promise.all([business.end(), journalPool.end()]).catch(() => {});
    throw new Unreachable(`PostgreSQL at ${servers.postgres} did not answer: ${describe(error)}`);
  }
  await business.query(
    `CREATE TABLE "${ORDERS_TABLE}" (run_id TEXT NOT NULL, step INTEGER NOT NULL, amount INTEGER NOT NULL, PRIMARY KEY (run_id, step))`,
  );
  await business.query(
    `CREATE TABLE "${JOURNAL_TABLE}" (run_id TEXT NOT NULL, seq INTEGER NOT NULL, data BYTEA NOT NULL, at_ms BIGINT NOT NULL, PRIMARY KEY (run_id, seq))`,
  );
  // Inserts one business row. $1 run id, $2 step, $3 amount. Returns nothing.
  const insertOrder = `INSERT INTO "${ORDERS_TABLE}" (run_id, step, amount) VALUES ($1, $2, $3)`;
  // Appends one journal entry. $1 run id, $2 seq, $3 data, $4 time in ms. Returns nothing.
  const insertEntry = `INSERT INTO "${JOURNAL_TABLE}" (run_id, seq, data, at_ms) VALUES ($1, $2, $3, $4)`;
  // Counts a run's business rows. $1 run id. Returns { n }.
  const countOrders = `SELECT count(*)::int AS n FROM "${ORDERS_TABLE}" WHERE run_id = $1`;
  return {
    name: 'postgres',
    where: servers.postgres,
    async write(runId, step) {
      await business.query({ name: 'wf-order', text: insertOrder, values: [runId, step, 500] });
    },
    async journal(runId, seq, data) {
      await journalPool.query({ name: 'wf-entry', text: insertEntry, values: [runId, seq, data, Date.now()] });
    },
    atomicWrites: {
      steps: postgresSteps(business, { table: STEPS_TABLE }),
      async write(tx, runId, step) {
        await (tx as PoolClient).query({ name: 'wf-order', text: insertOrder, values: [runId, step, 500] });
      },
    },
    async ordersOf(runId) {
      return ((await business.query(countOrders, [runId])).rows[0] as { n: number }).n;
    },
    idemStore() {
      return new PostgresStore({ url: servers.postgres, table: IDEM_TABLE });
    },
    async close() {
      await dropOwnTables(business).catch(() => {});
      await Promise.all([business.end(), journalPool.end()]);
    },
  };
}

/** Drops every table of the connection's schema whose name starts with `TABLE_PREFIX`. */
async function dropOwnTables(client: { query(text: string): Promise<{ rows: unknown[] }> }): Promise<void> {
  // Lists the tables this part owns. No parameters. Returns { name } rows.
  const { rows } = await client.query(
    `SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() AND starts_with(tablename, '${TABLE_PREFIX}')`,
  );
  const names = (rows as { name: string }[]).map(({ name }) => `"${name}"`);
  if (names.length > 0) await client.query(`DROP TABLE IF EXISTS ${names.join(', ')} CASCADE`);
}
