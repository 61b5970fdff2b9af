/**
 * `npm run bench -- --only backfill`: what `backfill()` costs per item on SQLite and PostgreSQL,
 * against a bare loop that calls the same handler with the same concurrency. The handler writes
 * one row (its effect) in a table of the same database, so the bare loop is the work itself:
 *
 *   bare    a loop over the items, `concurrency` at a time, calling the handler
 *   new     backfill() over items it has never seen: read the batch's records, claim, handler, complete
 *   re-run  backfill() over items all finished: read the batch's records, skip (no handler, no write)
 *
 * The re-run goes over more items than the first run: the extra records are made beforehand
 * through a second store on the same table whose writes skip the disk sync, which spares the
 * benchmark minutes of seeding and changes nothing for the reads being measured.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backfill } from '../src/backfill/index.js';
import type { Store } from '../src/core/store.js';
import { PostgresStore } from '../src/stores/postgres/index.js';
import { SqliteStore } from '../src/stores/sqlite/index.js';
import { type Align, table } from './report.js';
import { describe, servers } from './store-targets.js';

export const BACKFILL_STORES = ['sqlite', 'postgres'] as const;
type BackfillStoreName = (typeof BACKFILL_STORES)[number];

const CONCURRENCY = 16;
const BATCH_SIZE = 1000;
const EFFECTS_TABLE = 'idem_bench_backfill_effects';
const RECORDS_TABLE = 'idem_bench_backfill';

/** One figure: how many items, in how long. */
export interface Throughput {
  items: number;
  elapsedMs: number;
  itemsPerSecond: number;
}

export interface BackfillRow {
  store: BackfillStoreName;
  where?: string;
  bare?: Throughput;
  fresh?: Throughput;
  /** The best of the re-runs (other work on the machine only ever slows a run down). */
  rerun?: Throughput;
  skipped?: string;
}

export interface BackfillReport {
  concurrency: number;
  batchSize: number;
  rows: BackfillRow[];
}

interface Options {
  stores: string[];
  quick: boolean;
  log: (line: string) => void;
}

/** A database the benchmark writes in: the store, the seeding store, and the handler's effect. */
interface Target {
  where: string;
  store: Store;
  /** The same table as `store`, without waiting for the disk on each commit: for seeding only. */
  seeder: Store;
  effect(key: string): Promise<void>;
  close(): Promise<void>;
}

export async function benchBackfill({ stores, quick, log }: Options): Promise<BackfillReport> {
  const freshItems = quick ? 1000 : 5000;
  const rerunItems = quick ? 5000 : 50_000;
  const rows: BackfillRow[] = [];
  for (const name of BACKFILL_STORES.filter((store) => stores.includes(store))) {
    log(`  backfill on ${name}`);
    let target: Target;
    try {
      target = name === 'sqlite' ? await sqliteTarget() : await postgresTarget();
    } catch (error) {
      rows.push({ store: name, skipped: describe(error) });
      continue;
    }
    try {
      rows.push({ store: name, where: target.where, ...(await benchOne(target, freshItems, rerunItems, quick)) });
    } catch (error) {
      rows.push({ store: name, skipped: describe(error) });
    } finally {
      await target.close();
    }
  }
  return { concurrency: CONCURRENCY, batchSize: BATCH_SIZE, rows };
}

async function benchOne(target: Target, freshItems: number, rerunItems: number, quick: boolean) {
  const items = (from: number, count: number, prefix: string) =>
    Array.from({ length: count }, (_, i) => ({ id: `${prefix}-${from + i}` }));
  const handler = (item: { id: string }) => target.effect(item.id);
  // Warm up the connections, the JIT and the tables.
  await bareLoop(items(0, 200, 'warm'), handler);
  await backfill({ name: 'warm', items: items(0, 200, 'warm'), key: (item) => item.id, handler, store: target.store });

  const bare = await timed(freshItems, () => bareLoop(items(0, freshItems, 'bare'), handler));
  const run = { name: 'bench', key: (item: { id: string }) => item.id, handler, concurrency: CONCURRENCY };
  const fresh = await timed(freshItems, async () => {
    const result = await backfill({
      ...run,
      items: items(0, freshItems, 'item'),
      store: target.store,
      batchSize: BATCH_SIZE,
    });
    if (result.done !== freshItems) throw new Error(`the first run did ${result.done} of ${freshItems} items`);
  });
  await backfill({
    ...run,
    handler: () => {},
    concurrency: 64,
    items: items(freshItems, rerunItems - freshItems, 'item'),
    store: target.seeder,
  });
  let rerun: Throughput | undefined;
  for (let round = 0; round < (quick ? 1 : 3); round++) {
    const measured = await timed(rerunItems, async () => {
      const result = await backfill({
        ...run,
        items: items(0, rerunItems, 'item'),
        store: target.store,
        batchSize: BATCH_SIZE,
      });
      if (result.skipped !== rerunItems) throw new Error(`the re-run skipped ${result.skipped} of ${rerunItems} items`);
    });
    if (rerun === undefined || measured.itemsPerSecond > rerun.itemsPerSecond) rerun = measured;
  }
  return { bare, fresh, rerun };
}

async function bareLoop<T>(items: T[], handler: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await handler(items[next++] as T);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

async function timed(items: number, work: () => Promise<void>): Promise<Throughput> {
  const started = performance.now();
  await work();
  const elapsedMs = performance.now() - started;
  return { items, elapsedMs, itemsPerSecond: (items * 1000) / elapsedMs };
}

async function sqliteTarget(): Promise<Target> {
  const { default: Database } = await import('better-sqlite3');
  const directory = mkdtempSync(join(tmpdir(), 'idem-bench-backfill-'));
  const path = join(directory, 'idem.db');
  const store = new SqliteStore({ path, table: RECORDS_TABLE });
  await store.migrate();
  const seedDb = new Database(path);
  seedDb.pragma('synchronous = OFF');
  const seeder = new SqliteStore({ database: seedDb, table: RECORDS_TABLE });
  // The effect: one row in a table of its own file, with the store's settings (WAL, synchronous NORMAL).
  const effects = new Database(join(directory, 'effects.db'));
  effects.pragma('journal_mode = WAL');
  effects.pragma('synchronous = NORMAL');
  effects.exec(`CREATE TABLE ${EFFECTS_TABLE} (key TEXT PRIMARY KEY)`);
  const insert = effects.prepare(`INSERT INTO ${EFFECTS_TABLE} (key) VALUES (?) ON CONFLICT (key) DO NOTHING`);
  return {
    where: `${directory} (WAL, synchronous NORMAL)`,
    store,
    seeder,
    async effect(key) {
      insert.run(key);
    },
    async close() {
      await store.close();
      await seeder.close();
      seedDb.close();
      effects.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

async function postgresTarget(): Promise<Target> {
  const { default: pg } = await import('pg');
  // As many connections as the store's own pool (10).
  const pool = new pg.Pool({ connectionString: servers.postgres, max: 10, connectionTimeoutMillis: 2000 });
  const seedPool = new pg.Pool({ connectionString: servers.postgres, max: 10, options: '-c synchronous_commit=off' });
  pool.on('error', () => {});
  seedPool.on('error', () => {});
  const drop = `DROP TABLE IF EXISTS "${RECORDS_TABLE}_journal", "${RECORDS_TABLE}", "${EFFECTS_TABLE}"`;
  try {
    await pool.query(drop);
  } catch (error) {
    await Promise.all([pool.end(), seedPool.end()]).catch(() => {});
    throw new Error(`PostgreSQL at ${servers.postgres} did not answer: ${describe(error)}`);
  }
  await pool.query(`CREATE TABLE "${EFFECTS_TABLE}" (key TEXT PRIMARY KEY)`);
  const store = new PostgresStore({ url: servers.postgres, table: RECORDS_TABLE });
  await store.migrate();
  const seeder = new PostgresStore({ pool: seedPool, table: RECORDS_TABLE });
  const insert = `INSERT INTO "${EFFECTS_TABLE}" (key) VALUES ($1) ON CONFLICT (key) DO NOTHING`;
  return {
    where: servers.postgres,
    store,
    seeder,
    async effect(key) {
      await pool.query({ name: 'bench-effect', text: insert, values: [key] });
    },
    async close() {
      await store.close();
      await seeder.close();
      await pool.query(drop).catch(() => {});
      await Promise.all([pool.end(), seedPool.end()]);
    },
  };
}

const rate = (throughput: Throughput | undefined) =>
  throughput === undefined ? '-' : Math.round(throughput.itemsPerSecond).toLocaleString('en-US');
const ratio = (a: Throughput | undefined, b: Throughput | undefined) =>
  a === undefined || b === undefined ? '-' : `${(a.itemsPerSecond / b.itemsPerSecond).toFixed(2)}x`;

export function backfillSection(report: BackfillReport): string {
  const first = report.rows.find((row) => row.fresh !== undefined);
  const out = [
    `BACKFILL: items per second, ${report.concurrency} items at once, records read ${report.batchSize} at a time;`,
    'the handler writes one row (its effect) in the same database: SQLite a file of its own, PostgreSQL a table;',
    `bare = a loop calling the handler; new = backfill() over ${first?.fresh?.items.toLocaleString('en-US') ?? '-'} items never seen;`,
    `re-run = backfill() over ${first?.rerun?.items.toLocaleString('en-US') ?? '-'} items all finished (best of the runs);`,
    'x bare = backfill items/s / bare items/s.',
    '',
  ];
  const align: Align[] = ['left', 'right', 'right', 'right', 'right', 'right'];
  const rows = report.rows.map((row) => {
    if (row.skipped !== undefined) return [row.store, `skipped: ${row.skipped}`, '', '', '', ''];
    return [
      row.store,
      rate(row.bare),
      rate(row.fresh),
      ratio(row.fresh, row.bare),
      rate(row.rerun),
      ratio(row.rerun, row.bare),
    ];
  });
  out.push(
    table(['store', 'bare items/s', 'new items/s', 'new x bare', 're-run items/s', 're-run x bare'], rows, align),
  );
  return out.join('\n');
}
