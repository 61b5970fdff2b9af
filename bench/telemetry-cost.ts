/**
 * The production part, function wrapper: `idempotent(createOrder)` with each production feature on
 * (telemetry, encryption) against Idem with them off and against the bare function, on the memory
 * store, SQLite and Redis, one call at a time. Also Idem as it was before telemetry existed
 * (`pre-telemetry.ts`), for what the feature costs when it is not used.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AdminStore } from '../src/core/store.js';
import { answers } from './http.js';
import { measureTogether } from './measure.js';
import { PRE_TELEMETRY_COMMIT, preTelemetrySource } from './pre-telemetry.js';
import { createOrder, type Order, order } from './sample-order.js';
import { deleteKeys, describe, servers } from './store-targets.js';
import { featureOptions, Recorder, TELEMETRY_VARIANTS } from './telemetry-variants.js';

export type CostMode = 'new keys' | 'replays';

/** A variant of this part: the production variants, and `pre-telemetry`. */
export type CostVariantId = (typeof TELEMETRY_VARIANTS)[number]['id'] | 'pre-telemetry';

export interface FunctionCostRow {
  store: string;
  variant: CostVariantId;
  mode: CostMode;
  /** Median over the rounds of each round's mean time per call, in microseconds. */
  meanUs: number;
  /**
   * Median over the rounds of each round's median call, in microseconds: the figure the ratios
   * use, as a call the OS preempted on a busy machine moves a mean of a few microseconds a lot.
   */
  p50Us: number;
  /** Median over the rounds of each round's p99, in microseconds. */
  p99Us: number;
  /** Each round's median call, in microseconds, in the order run. */
  roundsUs: number[];
  /** p50Us over the `off` row's (same store and mode). */
  xOff?: number;
  /** p50Us minus the `off` row's, in microseconds. */
  plusOffUs?: number;
  /** p50Us over the `bare` row's (same store and mode). */
  xBare?: number;
  failures: number;
  firstError?: string;
}

export interface FunctionCostReport {
  rounds: number;
  /** Time each variant is measured per round, in ms. */
  roundMs: number;
  rows: FunctionCostRow[];
  skipped: { store: string; reason: string }[];
  notes: string[];
}

export interface FunctionCostOptions {
  stores: string[];
  quick: boolean;
  log: (line: string) => void;
}

/** The stores of this part, in the order they run. */
const COST_STORES = ['memory', 'sqlite', 'redis'] as const;
type CostStore = (typeof COST_STORES)[number];
const TABLE = 'idem_bench_prod';
const REDIS_PREFIX = 'idem_bench_prod:';
/** Keys completed before the replay runs; replays cycle through them. */
const REPLAY_KEYS = 100;

type Call = (order: Order) => Promise<unknown>;

interface Opened {
  variant: CostVariantId;
  call: Call;
  store: AdminStore | undefined;
}

/**
 * Measures every variant on each store in `stores` that answers, new keys then replays. Each round
 * times every variant in turn (`measureTogether`); a row is the median of its rounds.
 */
export async function benchFunctionCost(options: FunctionCostOptions): Promise<FunctionCostReport> {
  const { log } = options;
  const rounds = options.quick ? 2 : 5;
  const roundMs = options.quick ? 80 : 300;
  const report: FunctionCostReport = { rounds, roundMs, rows: [], skipped: [], notes: [] };
  const pre = preTelemetrySource();
  if (typeof pre === 'string') report.notes.push(`pre-telemetry: SKIPPED, ${pre}`);
  else {
    report.notes.push(
      `pre-telemetry = Idem at commit ${PRE_TELEMETRY_COMMIT} (main just before telemetry was merged), its own src/ imported in this process, features off: "x off" near 1.00x is the cost of telemetry when unused.`,
    );
  }
  const directory = mkdtempSync(join(tmpdir(), 'idem-bench-prod-'));
  try {
    for (const store of COST_STORES) {
      if (!options.stores.includes(store)) continue;
      const up = store === 'redis' ? await answers(servers.redis) : true;
      if (up !== true) {
        report.skipped.push({ store, reason: up });
        log(`  function ${store}: skipped (${up})`);
        continue;
      }
      log(`  function wrapper on ${store}`);
      const sources = [new URL('../src/', import.meta.url), ...(typeof pre === 'string' ? [] : [pre])];
      report.rows.push(...(await benchStore(store, sources, directory, rounds, roundMs, log)));
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
  compare(report.rows);
  return report;
}

/** Every variant on one store, new keys then replays; closes the stores and drops what they kept. */
async function benchStore(
  store: CostStore,
  sources: URL[],
  directory: string,
  rounds: number,
  roundMs: number,
  log: (line: string) => void,
): Promise<FunctionCostRow[]> {
  const opened = await openVariants(store, sources, directory);
  try {
    const rows: FunctionCostRow[] = [];
    for (const mode of ['new keys', 'replays'] as const) {
      rows.push(...(await measureMode(store, mode, opened, rounds, roundMs)));
    }
    return rows;
  } finally {
    for (const { store: open } of opened) await open?.close().catch(() => {});
    if (store === 'redis') await dropRedisKeys().catch((error: unknown) => log(`  cleanup: ${describe(error)}`));
  }
}

/** Times one mode of every variant in `rounds` interleaved rounds; one row per variant. */
async function measureMode(
  store: CostStore,
  mode: CostMode,
  opened: Opened[],
  rounds: number,
  roundMs: number,
): Promise<FunctionCostRow[]> {
  if (mode === 'replays') {
    for (const { call } of opened) for (let i = 0; i < REPLAY_KEYS; i++) await call(order(`replay-${i}`));
  }
  const perRound: Awaited<ReturnType<typeof measureTogether>>[] = [];
  for (let round = 0; round < rounds; round++) {
    const operations = opened.map(
      ({ call }) =>
        (i: number) =>
          call(order(mode === 'replays' ? `replay-${Math.abs(i) % REPLAY_KEYS}` : `new-${round}-${i}`)),
    );
    perRound.push(
      await measureTogether(operations, { durationMs: roundMs, slices: 4, warmupMs: round === 0 ? 100 : 20 }),
    );
    if (store === 'memory' && mode === 'new keys') await emptyAll(opened);
  }
  return opened.map(({ variant }, index) => {
    const results = perRound.map((measured) => measured[index]).filter((result) => result !== undefined);
    const failed = results.find((result) => result.failures > 0);
    return {
      store,
      variant,
      mode,
      meanUs: median(results.map((result) => result.meanUs)),
      p50Us: median(results.map((result) => result.p50Us)),
      p99Us: median(results.map((result) => result.p99Us)),
      roundsUs: results.map((result) => result.p50Us),
      failures: results.reduce((sum, result) => sum + result.failures, 0),
      ...(failed?.firstError === undefined ? {} : { firstError: failed.firstError }),
    };
  });
}

/**
 * Deletes every record of the memory stores (a sweep as if ten days had passed), so that new keys
 * do not pile up in the heap round after round: each round starts from empty stores.
 */
async function emptyAll(opened: Opened[]): Promise<void> {
  const later = Date.now() + 10 * 24 * 60 * 60 * 1000;
  for (const { store } of opened) await store?.sweep?.(later, Number.MAX_SAFE_INTEGER);
}

/**
 * The bare function, then `idempotent(createOrder)` per variant, each on a store of its own (a
 * file, or a Redis prefix, of its own), from today's src/ and then from each older source.
 */
async function openVariants(store: CostStore, sources: URL[], directory: string): Promise<Opened[]> {
  const [current, ...older] = sources as [URL, ...URL[]];
  const recorder = new Recorder();
  const opened: Opened[] = [{ variant: 'bare', call: createOrder, store: undefined }];
  for (const { id } of TELEMETRY_VARIANTS) {
    const features = featureOptions(id, recorder);
    if (features === undefined) continue;
    opened.push(await wrap(current, store, id, directory, features));
  }
  for (const source of older) opened.push(await wrap(source, store, 'pre-telemetry', directory, {}));
  return opened;
}

async function wrap(
  source: URL,
  storeName: CostStore,
  variant: CostVariantId,
  directory: string,
  features: object,
): Promise<Opened> {
  const { idempotent } = (await import(
    new URL('core/idempotent.ts', source).href
  )) as typeof import('../src/core/idempotent.js');
  const store = await openStore(source, storeName, variant, directory);
  const call = idempotent(createOrder, { store, name: 'createOrder', key: (o) => o.id, ...features });
  return { variant, call, store };
}

async function openStore(source: URL, name: CostStore, variant: string, directory: string): Promise<AdminStore> {
  const module = (path: string) => import(new URL(path, source).href);
  switch (name) {
    case 'memory': {
      const { MemoryStore } = (await module(
        'stores/memory/index.ts',
      )) as typeof import('../src/stores/memory/index.js');
      // The default cap (100,000 records) is below what one round of new keys reaches.
      return new MemoryStore({ maxRecords: 10_000_000, maxBytes: 4 * 1024 ** 3 });
    }
    case 'sqlite': {
      const { SqliteStore } = (await module(
        'stores/sqlite/index.ts',
      )) as typeof import('../src/stores/sqlite/index.js');
      return new SqliteStore({ path: join(directory, `${variant}.db`), table: TABLE });
    }
    case 'redis': {
      const { RedisStore } = (await module('stores/redis/index.ts')) as typeof import('../src/stores/redis/index.js');
      return new RedisStore({ url: servers.redis, prefix: `${REDIS_PREFIX}${variant}:` });
    }
  }
}

async function dropRedisKeys(): Promise<void> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(servers.redis, { maxRetriesPerRequest: 1, connectTimeout: 2000 });
  try {
    await deleteKeys(redis, REDIS_PREFIX);
  } finally {
    redis.disconnect();
  }
}

/** Sets each row's ratios to the `off` and `bare` rows of its store and mode. */
function compare(rows: FunctionCostRow[]): void {
  for (const row of rows) {
    const peer = (variant: CostVariantId) =>
      rows.find((other) => other.store === row.store && other.mode === row.mode && other.variant === variant);
    const off = peer('off');
    const bare = peer('bare');
    if (off !== undefined && row.variant !== 'bare') {
      row.xOff = row.p50Us / off.p50Us;
      row.plusOffUs = row.p50Us - off.p50Us;
    }
    if (bare !== undefined) row.xBare = row.p50Us / bare.p50Us;
  }
}

export function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}
