import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sqliteOutbox } from '../../src/messaging/index.js';
import type { OutboxConformanceTarget } from '../../src/testing/index.js';

const directory = join(tmpdir(), 'idem-outbox-tests');
/** Short leases, so a relay killed mid-pass lets go of its messages within the test. */
export const TEST_LEASE_MS = 1500;

/** One file per table, so every process of a multi-process scenario opens the same file. */
export function outboxPath(table: string): string {
  return join(directory, `${table}.db`);
}

function openApp(table: string): Database.Database {
  mkdirSync(directory, { recursive: true });
  const db = new Database(outboxPath(table), { timeout: 5000 });
  db.pragma('journal_mode = WAL');
  return db;
}

/** A target whose transactions run on `db`: BEGIN IMMEDIATE, the body (awaited), COMMIT. */
function target(
  db: Database.Database,
  outbox: OutboxConformanceTarget<Database.Database>['outbox'],
): OutboxConformanceTarget<Database.Database> {
  return {
    outbox,
    async transaction(body) {
      db.exec('BEGIN IMMEDIATE');
      try {
        const value = await body(db);
        db.exec('COMMIT');
        return value;
      } catch (error) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw error;
      }
    },
    async close() {
      await outbox.close();
      db.close();
    },
  };
}

/** The outbox opens its own connection to the file; the application writes with another. */
export async function createOutbox(table: string): Promise<OutboxConformanceTarget<Database.Database>> {
  const db = openApp(table);
  return target(db, sqliteOutbox<Database.Database>(outboxPath(table), { table, leaseMs: TEST_LEASE_MS }));
}

/** The outbox shares the application's connection. */
export async function createSharedOutbox(table: string): Promise<OutboxConformanceTarget<Database.Database>> {
  const db = openApp(table);
  return target(db, sqliteOutbox(db, { table, leaseMs: TEST_LEASE_MS }));
}

export async function dropOutbox(table: string): Promise<void> {
  const path = outboxPath(table);
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${path}${suffix}`, { force: true });
}
