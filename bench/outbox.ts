/**
 * The outbox: how many messages per second relay passes move from pending to published with a
 * publisher that does nothing (so the number is the database's share of a relay), for a batch
 * (the pass's `limit`) of 100 and 500, with one relay and with four at once. Also how fast
 * `enqueue` writes, 100 messages per transaction. `benchOutbox` runs it; `outboxSection` prints it.
 *
 *   enqueue  outbox.enqueue in the caller's transaction, 100 per COMMIT, one transaction at a time
 *   relay    outbox.relay({ limit: batch }) passes until nothing is pending; `relays` at once
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { OutboxStore, PendingMessage } from '../src/messaging/index.js';
import { mysqlOutbox, postgresOutbox, sqliteOutbox } from '../src/messaging/index.js';
import { type Align, table } from './report.js';
import { servers, Unreachable } from './store-targets.js';

export const OUTBOX_DIALECTS = ['postgres', 'mysql', 'sqlite'] as const;
export type OutboxDialect = (typeof OUTBOX_DIALECTS)[number];

export interface OutboxBenchRow {
  dialect: OutboxDialect;
  /** The pass's limit. */
  batch: number;
  /** Relays running passes at once, in this process. */
  relays: number;
  messages: number;
  /** From the first pass to the last, in ms. */
  elapsedMs: number;
  /** Messages published per second. */
  perSec: number;
  /** Messages enqueued per second before the relay ran (100 per transaction). */
  enqueuePerSec: number;
}

export interface OutboxBenchReport {
  messages: number;
  rows: OutboxBenchRow[];
  skipped: { dialect: OutboxDialect; reason: string }[];
}

export interface OutboxBenchOptions {
  /** Which databases; default all three (one that does not answer is skipped). */
  dialects?: readonly OutboxDialect[];
  /** Fewer messages (5,000 instead of 20,000 per row). */
  quick?: boolean;
  log?: (line: string) => void;
}

/** An outbox on a fresh table, a transaction of its database, and how to drop it all. */
interface Bench {
  outbox: OutboxStore<unknown>;
  transaction(body: (tx: unknown) => Promise<void>): Promise<void>;
  end(): Promise<void>;
}

const BATCHES = [100, 500];
const RELAYS = [1, 4];
const PER_TRANSACTION = 100;

export async function benchOutbox(options: OutboxBenchOptions = {}): Promise<OutboxBenchReport> {
  const log = options.log ?? (() => {});
  const messages = options.quick ? 5000 : 20_000;
  const report: OutboxBenchReport = { messages, rows: [], skipped: [] };
  for (const dialect of options.dialects ?? OUTBOX_DIALECTS) {
    try {
      for (const batch of BATCHES) {
        for (const relays of RELAYS) {
          log(`  outbox on ${dialect}: batch ${batch}, ${relays} relay(s)`);
          report.rows.push({ dialect, batch, relays, messages, ...(await runOne(dialect, messages, batch, relays)) });
        }
      }
    } catch (error) {
      if (!(error instanceof Unreachable)) throw error;
      report.skipped.push({ dialect, reason: error.message });
    }
  }
  return report;
}

/** Opens a fresh outbox on `dialect`, fills it, relays it, and drops it. */
async function runOne(dialect: OutboxDialect, messages: number, batch: number, relays: number) {
  let bench: Bench;
  try {
    bench = await open(dialect);
    await bench.outbox.ensureSchema();
  } catch (error) {
    throw new Unreachable(error instanceof Error ? error.message : String(error));
  }
  try {
    return await fillAndRelay(bench, messages, batch, relays);
  } finally {
    await bench.end();
  }
}

async function fillAndRelay(bench: Bench, messages: number, batch: number, relays: number) {
  const payload = { orderId: 0, state: 'paid', cents: 1250 };
  const enqueueStart = performance.now();
  for (let i = 0; i < messages; i += PER_TRANSACTION) {
    await bench.transaction(async (tx) => {
      for (let j = i; j < Math.min(i + PER_TRANSACTION, messages); j++) {
        await bench.outbox.enqueue(tx, {
          topic: 'orders.paid',
          key: j % 4 === 0 ? undefined : `order-${j % 997}`,
          payload,
        });
      }
    });
  }
  const enqueueMs = performance.now() - enqueueStart;
  const publish = async (batchOf: readonly PendingMessage[]) => batchOf.map(() => ({ ok: true as const }));
  const relay = async () => {
    for (;;) {
      const pass = await bench.outbox.relay({ limit: batch, nowMs: Date.now(), publish, retryAtMs: () => undefined });
      if (pass.claimed === 0 && (await bench.outbox.counts()).pending === 0) return;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: relays }, relay));
  const elapsedMs = performance.now() - start;
  return { elapsedMs, perSec: (messages / elapsedMs) * 1000, enqueuePerSec: (messages / enqueueMs) * 1000 };
}

async function open(dialect: OutboxDialect): Promise<Bench> {
  const tableName = `idem_bench_outbox_${randomBytes(4).toString('hex')}`;
  if (dialect === 'postgres') {
    const pool = new pg.Pool({ connectionString: servers.postgres, max: 8, connectionTimeoutMillis: 2000 });
    pool.on('error', () => {});
    const outbox = postgresOutbox(pool, { table: tableName });
    return {
      outbox: outbox as OutboxStore<unknown>,
      async transaction(body) {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          await body(client);
          await client.query('COMMIT');
        } finally {
          client.release();
        }
      },
      async end() {
        await outbox.close();
        await pool.query(`DROP TABLE IF EXISTS "${tableName}"`);
        await pool.end();
      },
    };
  }
  if (dialect === 'mysql') {
    const pool = mysql.createPool({ uri: servers.mysql, connectionLimit: 8, connectTimeout: 2000 });
    const outbox = mysqlOutbox(pool, { table: tableName });
    return {
      outbox: outbox as OutboxStore<unknown>,
      async transaction(body) {
        const connection = await pool.getConnection();
        try {
          await connection.beginTransaction();
          await body(connection);
          await connection.commit();
        } finally {
          connection.release();
        }
      },
      async end() {
        await outbox.close();
        await pool.query(`DROP TABLE IF EXISTS \`${tableName}\``);
        await pool.end();
      },
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'idem-bench-outbox-'));
  const db = new Database(join(dir, 'outbox.db'), { timeout: 5000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const outbox = sqliteOutbox(db, { table: tableName });
  return {
    outbox: outbox as OutboxStore<unknown>,
    async transaction(body) {
      db.exec('BEGIN IMMEDIATE');
      await body(db);
      db.exec('COMMIT');
    },
    async end() {
      await outbox.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function outboxSection(report: OutboxBenchReport): string {
  const out = [
    `OUTBOX: ${report.messages.toLocaleString('en-US')} messages per row (3 in 4 keyed, over 997 keys), a publisher that does nothing;`,
    'relay = passes of `batch` messages until none is pending (lock, publish, mark, commit), `relays` at once in one process;',
    'enqueue = outbox.enqueue in the caller transaction, 100 per commit, one transaction at a time (before the relay ran).',
    '',
  ];
  const align: Align[] = ['left', 'right', 'right', 'right', 'right'];
  const int = (value: number) => Math.round(value).toLocaleString('en-US');
  const rows = report.rows.map((row) => [
    row.dialect,
    String(row.batch),
    String(row.relays),
    int(row.perSec),
    int(row.enqueuePerSec),
  ]);
  out.push(table(['database', 'batch', 'relays', 'relayed msg/s', 'enqueued msg/s'], rows, align));
  for (const { dialect, reason } of report.skipped) out.push(`  ${dialect}: SKIPPED, ${reason}`);
  return out.join('\n');
}
