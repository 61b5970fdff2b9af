/**
 * The production part, sweeper: constant claim load on a SQL store whose records expire a second
 * after they complete, with and without `startSweeper` running beside it. Shows what the
 * sweeper's deletes cost the claims (latency, throughput) and what they buy (a table that stays
 * bounded instead of growing with every key ever used).
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { idempotent } from '../src/core/idempotent.js';
import type { AdminStore } from '../src/core/store.js';
import { startSweeper } from '../src/core/sweeper.js';
import { PostgresStore } from '../src/stores/postgres/index.js';
import { SqliteStore } from '../src/stores/sqlite/index.js';
import { answers } from './http.js';
import { describe, servers } from './store-targets.js';
import { median } from './telemetry-cost.js';

export interface SweeperRow {
  store: 'sqlite' | 'postgres';
  sweeper: boolean;
  /** Median over the rounds of each run's completed calls per second. */
  callsPerSec: number;
  /** Median over the rounds of each run's claim latency percentiles (the engine's `claim` events), in ms. */
  claimP50Ms: number;
  claimP99Ms: number;
  /** Median over the rounds of each run's whole-call p99 (claim, function, completion), in ms. */
  callP99Ms: number;
  /** Median over the rounds of the sweeper's deletes per second (0 without a sweeper). */
  sweptPerSec: number;
  /** Rows in the table when each run ended, in the order run. */
  rowsAtEnd: number[];
  /** Calls completed in each run, in the order run. */
  calls: number[];
  failures: number;
  firstError?: string;
}

export interface SweeperReport {
  concurrency: number;
  durationS: number;
  rounds: number;
  retentionMs: number;
  everyMs: number;
  batch: number;
  rows: SweeperRow[];
  skipped: { store: string; reason: string }[];
}

export interface SweeperCostOptions {
  stores: string[];
  quick: boolean;
  log: (line: string) => void;
}

const TABLE = 'idem_bench_sweep';
const CONCURRENCY = 16;
/** Completed records expire this long after they are written. */
const RETENTION_MS = 1000;
/** The lease must be shorter than the retention; the work is instant, so it never runs out. */
const LEASE_MS = 500;
/** The sweeper's settings in these runs: far more often than its 60 s default, to show its cost under load. */
const EVERY_MS = 500;
const BATCH = 1000;

interface Target {
  name: SweeperRow['store'];
  store: AdminStore;
  /** Deletes every row, before a run. */
  empty(): Promise<void>;
  /** Rows in the table now. */
  count(): Promise<number>;
  close(): Promise<void>;
}

interface Run {
  sweeper: boolean;
  callsPerSec: number;
  claimP50Ms: number;
  claimP99Ms: number;
  callP99Ms: number;
  sweptPerSec: number;
  rowsAtEnd: number;
  calls: number;
  failures: number;
  firstError?: string;
}

/** Runs without and with a sweeper, in alternating order, `rounds` times on each store. */
export async function benchSweeperCost(options: SweeperCostOptions): Promise<SweeperReport> {
  const { log } = options;
  const durationS = options.quick ? 1.5 : 5;
  const rounds = options.quick ? 1 : 3;
  const report: SweeperReport = {
    concurrency: CONCURRENCY,
    durationS,
    rounds,
    retentionMs: RETENTION_MS,
    everyMs: EVERY_MS,
    batch: BATCH,
    rows: [],
    skipped: [],
  };
  for (const name of ['sqlite', 'postgres'] as const) {
    if (!options.stores.includes(name)) continue;
    const target = await openTarget(name).catch((error: unknown) => describe(error));
    if (typeof target === 'string') {
      report.skipped.push({ store: name, reason: target });
      log(`  sweeper ${name}: skipped (${target})`);
      continue;
    }
    try {
      const runs = await runRounds(target, rounds, durationS, log);
      for (const sweeper of [false, true])
        report.rows.push(
          rowOf(
            name,
            runs.filter((run) => run.sweeper === sweeper),
          ),
        );
    } finally {
      await target.empty().catch(() => {});
      await target.close().catch((error: unknown) => log(`  cleanup: ${describe(error)}`));
    }
  }
  return report;
}

/** `rounds` pairs of runs, off then on, then on then off, and so on; the table emptied before each. */
async function runRounds(
  target: Target,
  rounds: number,
  durationS: number,
  log: (line: string) => void,
): Promise<Run[]> {
  const runs: Run[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const sweeper of round % 2 === 0 ? [false, true] : [true, false]) {
      await target.empty();
      const run = await runLoad(target, sweeper, durationS * 1000);
      runs.push(run);
      log(
        `  sweeper ${target.name} ${sweeper ? 'on ' : 'off'}: ${Math.round(run.callsPerSec)} calls/s, claim p50 ${run.claimP50Ms.toFixed(2)} p99 ${run.claimP99Ms.toFixed(2)} ms, ${Math.round(run.sweptPerSec)} swept/s, ${run.rowsAtEnd} rows at end`,
      );
    }
  }
  return runs;
}

/**
 * `CONCURRENCY` callers, each calling the idempotent function with a new key as soon as its last
 * call returned, for `durationMs`; with `sweeper`, a sweeper on the same store beside them.
 */
async function runLoad(target: Target, sweeper: boolean, durationMs: number): Promise<Run> {
  const claims: number[] = [];
  const callTimes: number[] = [];
  let swept = 0;
  let failures = 0;
  let firstError: string | undefined;
  const run = Math.random().toString(36).slice(2, 10);
  const call = idempotent(async (id: string) => ({ id, status: 'created' }), {
    store: target.store,
    name: 'createOrder',
    key: (id) => id,
    retentionMs: RETENTION_MS,
    leaseMs: LEASE_MS,
    onEvent: (event) => {
      if (event.type === 'claim') claims.push(event.durationMs);
    },
  });
  const sweeping = sweeper
    ? startSweeper(target.store, {
        everyMs: EVERY_MS,
        batch: BATCH,
        onSweep: ({ deleted }) => {
          swept += deleted;
        },
      })
    : undefined;
  const started = performance.now();
  const end = started + durationMs;
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        // Requests reach a server through I/O, a turn of the event loop each; so here. Without it,
        // SQLite's synchronous calls would chain microtasks and starve the sweeper's timer.
        await new Promise((resolve) => setImmediate(resolve));
        const before = performance.now();
        try {
          await call(`${run}-${next++}`);
          callTimes.push(performance.now() - before);
        } catch (error) {
          failures += 1;
          firstError ??= describe(error);
        }
      }
    }),
  );
  const elapsedS = (performance.now() - started) / 1000;
  await sweeping?.stop();
  return {
    sweeper,
    callsPerSec: callTimes.length / elapsedS,
    claimP50Ms: percentile(claims, 0.5),
    claimP99Ms: percentile(claims, 0.99),
    callP99Ms: percentile(callTimes, 0.99),
    sweptPerSec: swept / elapsedS,
    rowsAtEnd: await target.count(),
    calls: callTimes.length,
    failures,
    ...(firstError === undefined ? {} : { firstError }),
  };
}

function rowOf(store: SweeperRow['store'], runs: Run[]): SweeperRow {
  const mid = (pick: (run: Run) => number) => median(runs.map(pick));
  const firstError = runs.find((run) => run.firstError !== undefined)?.firstError;
  return {
    store,
    sweeper: runs[0]?.sweeper ?? false,
    callsPerSec: mid((run) => run.callsPerSec),
    claimP50Ms: mid((run) => run.claimP50Ms),
    claimP99Ms: mid((run) => run.claimP99Ms),
    callP99Ms: mid((run) => run.callP99Ms),
    sweptPerSec: mid((run) => run.sweptPerSec),
    rowsAtEnd: runs.map((run) => run.rowsAtEnd),
    calls: runs.map((run) => run.calls),
    failures: runs.reduce((sum, run) => sum + run.failures, 0),
    ...(firstError === undefined ? {} : { firstError }),
  };
}

async function openTarget(name: SweeperRow['store']): Promise<Target> {
  return name === 'sqlite' ? sqliteTarget() : postgresTarget();
}

async function sqliteTarget(): Promise<Target> {
  const directory = mkdtempSync(join(tmpdir(), 'idem-bench-sweep-'));
  const path = join(directory, 'sweep.db');
  const store = new SqliteStore({ path, table: TABLE });
  // The store makes its table on first use: one untimed call before the raw connection reads it.
  await idempotent(async () => 0, { store, name: 'setup', key: () => 'setup' })();
  const { default: Database } = await import('better-sqlite3');
  const raw = new Database(path);
  return {
    name: 'sqlite',
    store,
    empty: async () => void raw.prepare(`DELETE FROM ${TABLE}`).run(),
    count: async () => (raw.prepare(`SELECT count(*) AS n FROM ${TABLE}`).get() as { n: number }).n,
    close: async () => {
      raw.close();
      await store.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

async function postgresTarget(): Promise<Target> {
  const up = await answers(servers.postgres);
  if (up !== true) throw new Error(up);
  const { default: pg } = await import('pg');
  const raw = new pg.Client({ connectionString: servers.postgres, connectionTimeoutMillis: 2000 });
  await raw.connect();
  const drop = () => raw.query(`DROP TABLE IF EXISTS "${TABLE}_journal", "${TABLE}"`);
  await drop();
  const store = new PostgresStore({ url: servers.postgres, table: TABLE });
  await idempotent(async () => 0, { store, name: 'setup', key: () => 'setup' })();
  return {
    name: 'postgres',
    store,
    empty: async () => void (await raw.query(`TRUNCATE "${TABLE}_journal", "${TABLE}"`)),
    count: async () => Number((await raw.query(`SELECT count(*) AS n FROM "${TABLE}"`)).rows[0]?.n ?? Number.NaN),
    close: async () => {
      await store.close();
      await drop().catch(() => {});
      await raw.end();
    },
  };
}

function percentile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * q) - 1)] as number;
}
