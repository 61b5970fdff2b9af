import { idempotent } from '../src/core/idempotent.js';
import { Engine, fingerprintOf, OutcomeKind, storeKeyOf } from '../src/core/index.js';
import { defaultSerializer } from '../src/core/value-codec.js';
import { MemoryStore } from '../src/stores/memory/index.js';
import { BATCH_READ_STORES, type BatchReadRow, benchBatchReads } from './batch-reads.js';
import { type Measurement, measure, measureTogether } from './measure.js';
import { createOrder, order } from './sample-order.js';
import { describe, openTarget, type StoreName, type StoreTarget, Unreachable } from './store-targets.js';

/** One measured line of the store part. */
export interface StoreRow {
  store: StoreName | 'none';
  /** `bare fn`, `idem new key`, `idem replay`, `raw 2 writes`, `raw 1 read`. */
  case: StoreCase;
  /** Calls in flight at once. */
  concurrency: number;
  /** What was called, in words. */
  what: string;
  result: Measurement;
  /** Extra cost of one call over the bare function, in microseconds (idem rows only). */
  overheadUs?: number;
  /** Time per call divided by the bare function's (idem rows only). */
  xBare?: number;
  /** Time per call divided by the raw floor's: two writes for a new key, one read for a replay. */
  xFloor?: number;
}

export type StoreCase = 'bare fn' | 'idem new key' | 'idem replay' | 'raw 2 writes' | 'raw 1 read';

/** A target next to the figure it judges; measured, never asserted. */
export interface TargetCheck {
  store: StoreName;
  what: string;
  value: number;
  unit: 'us' | 'x' | 'ops/s';
  target: string;
  met: boolean;
}

/** Cost of the pieces of one memory-store call, in microseconds: where the overhead goes. */
export interface OverheadPart {
  part: string;
  us: number;
}

export interface StoreReport {
  rows: StoreRow[];
  targets: TargetCheck[];
  skipped: { store: StoreName; reason: string }[];
  where: Partial<Record<StoreName, string>>;
  breakdown: OverheadPart[];
  /** Completed keys read back with `getMany` in batches of 1000, and with `get` key by key (sqlite, postgres, redis). */
  batchReads: BatchReadRow[];
}

export interface StoreBenchOptions {
  stores: StoreName[];
  quick: boolean;
  log: (line: string) => void;
}

const IN_FLIGHT = 32;
/** Replays cycle over this many completed keys. */
const REPLAY_KEYS = 1000;
/** Completed keys the batch reads read back; a tenth of it with --quick. */
const BATCH_READ_KEYS = 100_000;
/** Keys per second a re-run over finished items must read through `getMany` on SQLite and PostgreSQL. */
const BATCH_READ_TARGET = 50_000;

/**
 * The store part: for each store, `idempotent(createOrder)` against `createOrder` itself, for new
 * keys and for replays, one call at a time and 32 in flight, next to the raw driver doing the same
 * writes and reads on the same server.
 */
export async function benchStores(options: StoreBenchOptions): Promise<StoreReport> {
  const { log } = options;
  const windowMs = (name: StoreName) => (options.quick ? 200 : name === 'memory' ? 1000 : 2000);
  const report: StoreReport = { rows: [], targets: [], skipped: [], where: {}, breakdown: [], batchReads: [] };

  const bare: Record<number, Measurement> = {};
  for (const concurrency of [1, IN_FLIGHT]) {
    bare[concurrency] = await measure((i) => createOrder(order(`bare-${i}`)), {
      concurrency,
      durationMs: options.quick ? 200 : 1000,
    });
    report.rows.push({ store: 'none', case: 'bare fn', concurrency, what: 'createOrder()', result: bare[concurrency] });
  }

  for (const name of options.stores) {
    let target: StoreTarget;
    try {
      target = await openTarget(name);
    } catch (error) {
      const reason = error instanceof Unreachable ? error.message : `could not open: ${describe(error)}`;
      report.skipped.push({ store: name, reason });
      log(`  ${name}: skipped (${reason})`);
      continue;
    }
    report.where[name] = target.where;
    log(`  ${name}: ${target.where}`);
    try {
      await benchOne(target, windowMs(name), bare, report, log);
      if (BATCH_READ_STORES.includes(name)) await batchReadsOn(target, options.quick, report, log);
    } finally {
      await target.close().catch((error: unknown) => log(`  ${name}: cleanup failed: ${describe(error)}`));
    }
  }

  if (options.stores.includes('memory')) report.breakdown = await overheadBreakdown(options.quick);
  report.targets = [...judge(report.rows), ...judgeBatchReads(report.batchReads)];
  return report;
}

async function benchOne(
  target: StoreTarget,
  durationMs: number,
  bare: Record<number, Measurement>,
  report: StoreReport,
  log: (line: string) => void,
): Promise<void> {
  const { store, floor, name } = target;
  // Heartbeat left at its default: it is what a user gets, and it costs a timer per claim.
  const wrapped = idempotent(createOrder, { store, key: (o) => o.id });
  const add = (row: StoreRow) => {
    report.rows.push(row);
    const { opsPerSec, meanUs, failures, firstError } = row.result;
    const failed = failures > 0 ? `, ${failures} FAILED (${firstError})` : '';
    log(
      `    ${row.case.padEnd(13)} x${row.concurrency}: ${fmt(opsPerSec)} ops/s, mean ${meanUs.toFixed(1)} us${failed}`,
    );
  };

  const timing = { durationMs, slices: durationMs >= 1000 ? 10 : 2 };
  for (const concurrency of [1, IN_FLIGHT]) {
    const rawTag = `raw${concurrency}`;
    const idemTag = `new${concurrency}`;
    const baseline = bare[concurrency] as Measurement;
    // Raw floor and idem take turns slice by slice, so a busy machine weighs on both alike.
    const [writes, fresh] = (await measureTogether(
      [(i) => floor.twoWrites(spreadKey(rawTag, i)), (i) => wrapped(order(`${idemTag}-${i}`))],
      { ...timing, concurrency },
    )) as [Measurement, Measurement];
    add({ store: name, case: 'raw 2 writes', concurrency, what: floor.writes, result: writes });
    add({
      store: name,
      case: 'idem new key',
      concurrency,
      what: 'claim + run + complete',
      result: fresh,
      ...compare(fresh, baseline, writes, concurrency),
    });

    // Replays cycle over keys the runs above completed.
    const rawKeys = Math.max(1, Math.min(REPLAY_KEYS, writes.ops));
    const idemKeys = Math.max(1, Math.min(REPLAY_KEYS, fresh.ops));
    const [read, replay] = (await measureTogether(
      [
        (i) => floor.oneRead(spreadKey(rawTag, Math.abs(i) % rawKeys)),
        (i) => wrapped(order(`${idemTag}-${Math.abs(i) % idemKeys}`)),
      ],
      { ...timing, concurrency },
    )) as [Measurement, Measurement];
    add({ store: name, case: 'raw 1 read', concurrency, what: floor.read, result: read });
    add({
      store: name,
      case: 'idem replay',
      concurrency,
      what: 'claim finds the stored result',
      result: replay,
      ...compare(replay, baseline, read, concurrency),
    });
  }
}

/**
 * Overhead and ratios. One call at a time, the time per call is the mean latency; with 32 in
 * flight it is the inverse of the throughput (each call's own latency includes the queue).
 */
function compare(
  idem: Measurement,
  bare: Measurement,
  floor: Measurement,
  concurrency: number,
): Pick<StoreRow, 'overheadUs' | 'xBare' | 'xFloor'> {
  const perCall = (m: Measurement) => (concurrency === 1 ? m.meanUs : 1e6 / m.opsPerSec);
  return {
    overheadUs: perCall(idem) - perCall(bare),
    xBare: perCall(idem) / perCall(bare),
    xFloor: perCall(idem) / perCall(floor),
  };
}

function judge(rows: StoreRow[]): TargetCheck[] {
  const find = (store: StoreName, kind: StoreCase, concurrency = 1) =>
    rows.find((row) => row.store === store && row.case === kind && row.concurrency === concurrency);
  const checks: TargetCheck[] = [];
  for (const kind of ['idem new key', 'idem replay'] as const) {
    const row = find('memory', kind);
    if (row?.overheadUs === undefined) continue;
    checks.push({
      store: 'memory',
      what: `overhead per call, ${kind === 'idem new key' ? 'new key' : 'replay'}, 1 in flight`,
      value: row.overheadUs,
      unit: 'us',
      target: '< 2 us',
      met: row.overheadUs < 2,
    });
  }
  for (const store of ['redis', 'postgres'] as const) {
    const fresh = find(store, 'idem new key');
    const replay = find(store, 'idem replay');
    if (fresh?.xFloor !== undefined) {
      checks.push({
        store,
        what: 'new-key latency / two raw writes, 1 in flight',
        value: fresh.xFloor,
        unit: 'x',
        target: '<= 1.3x',
        met: fresh.xFloor <= 1.3,
      });
    }
    if (replay?.xFloor !== undefined) {
      checks.push({
        store,
        what: 'replay latency / one raw read, 1 in flight',
        value: replay.xFloor,
        unit: 'x',
        target: '<= 1.3x',
        met: replay.xFloor <= 1.3,
      });
    }
  }
  for (const concurrency of [1, IN_FLIGHT]) {
    const row = find('sqlite', 'idem new key', concurrency);
    if (row === undefined) continue;
    checks.push({
      store: 'sqlite',
      what: `new keys per second, ${concurrency} in flight`,
      value: row.result.opsPerSec,
      unit: 'ops/s',
      target: '> 15,000/s',
      met: row.result.opsPerSec > 15_000,
    });
  }
  return checks;
}

/** The batch reads on `target`'s store, after its other rows: the 100,000 keys they write would slow nothing then. */
async function batchReadsOn(target: StoreTarget, quick: boolean, report: StoreReport, log: (line: string) => void) {
  const count = quick ? BATCH_READ_KEYS / 10 : BATCH_READ_KEYS;
  const keyOf = (i: number) => spreadKey('batch', i);
  report.batchReads.push(...(await benchBatchReads(target.name, target.store, count, keyOf, log)));
}

function judgeBatchReads(rows: BatchReadRow[]): TargetCheck[] {
  return rows
    .filter((row) => row.how === 'getMany x1000' && (row.store === 'sqlite' || row.store === 'postgres'))
    .map((row) => ({
      store: row.store,
      what: `finished keys read per second, getMany in batches of 1000 (${row.keys.toLocaleString('en-US')} keys)`,
      value: row.keysPerSec,
      unit: 'ops/s',
      target: `> ${BATCH_READ_TARGET.toLocaleString('en-US')}/s`,
      met: row.keysPerSec > BATCH_READ_TARGET,
    }));
}

/**
 * Times the pieces one `idempotent` call on the memory store is made of, each alone, so the
 * overhead can be read as a sum. Approximate: each piece runs hot in a loop.
 */
async function overheadBreakdown(quick: boolean): Promise<OverheadPart[]> {
  const durationMs = quick ? 100 : 300;
  const args = [order('order-123456')];
  const result = await createOrder(order('order-123456'));
  const encoded = defaultSerializer.encode(result);
  const store = new MemoryStore({ maxRecords: 50_000_000 });
  const engine = new Engine({ store });
  const timer = new Engine({ store: new MemoryStore() });
  const parts: [string, (i: number) => Promise<unknown>][] = [
    ['fingerprintOf(args): canonical JSON + SHA-256', async () => fingerprintOf(args)],
    ['storeKeyOf(): SHA-256 of namespace, scope, key', async (i) => storeKeyOf('createOrder', '', `k${i}`)],
    ['defaultSerializer.encode(result): JSON, as it is plain data', async () => defaultSerializer.encode(result)],
    ['Engine.call(): timeout race around one store call', () => timer.call('get', async () => null)],
    [
      'engine.begin + lease.complete on MemoryStore (new key)',
      async (i) => {
        const decision = await engine.begin({ key: `b${i}`, fingerprint: 'f' });
        if (decision.kind === 'run') await decision.lease.complete({ kind: OutcomeKind.value, payload: encoded });
      },
    ],
    ['engine.begin on MemoryStore (replay)', (i) => engine.begin({ key: `b${Math.abs(i) % 1000}`, fingerprint: 'f' })],
  ];
  const out: OverheadPart[] = [];
  for (const [part, run] of parts) {
    const m = await measure(run, { durationMs, maxOps: 500_000 });
    out.push({ part, us: (m.elapsedMs * 1000) / m.ops });
  }
  return out;
}

/**
 * The raw floor's key for call `index`: 43 characters like idem's hashed store keys, in an order
 * as scattered as theirs, so both write into the same kind of index (a B-tree fed sequential keys
 * would flatter the floor). fmix32 is a bijection, so no two indexes share a key.
 */
export function spreadKey(tag: string, index: number): string {
  const hex = (value: number) => fmix32(value).toString(16).padStart(8, '0');
  return `${hex(index >>> 0)}${hex((index + 0x9e3779b9) >>> 0)}-${tag}`.padEnd(43, '.');
}

/** MurmurHash3's 32-bit finaliser. */
function fmix32(value: number): number {
  let h = value >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function fmt(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}
