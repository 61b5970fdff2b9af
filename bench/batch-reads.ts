import type { Store } from '../src/core/store.js';
import { getMany } from '../src/store-kit/index.js';
import type { StoreName } from './store-targets.js';

/** One measured batch read: how fast finished keys are read back, as a backfill re-run skips them. */
export interface BatchReadRow {
  store: StoreName;
  /** `getMany x1000`: batches of 1000 through `getMany`, one batch in flight; `get x32`: one key a call, 32 in flight. */
  how: 'getMany x1000' | 'get x32';
  /** Completed keys read, each once. */
  keys: number;
  /** Keys read per second. */
  keysPerSec: number;
}

/** The stores the batch reads run on: the ones a backfill of a million items would use. */
export const BATCH_READ_STORES: readonly StoreName[] = ['sqlite', 'postgres', 'redis'];

const BATCH = 1000;
const FILL_IN_FLIGHT = 64;
const GET_IN_FLIGHT = 32;
const RETENTION_MS = 24 * 60 * 60 * 1000;

/**
 * Completes `count` keys in `store` (claim + complete), then reads them all back twice: with
 * `getMany` from idem/store-kit in batches of 1000, one batch at a time, and with `get`, 32 keys
 * in flight, the way a caller without a batch read would. Keys are 43 characters in a scattered
 * order (`keyOf`), like the hashed keys a backfill writes.
 */
export async function benchBatchReads(
  name: StoreName,
  store: Store,
  count: number,
  keyOf: (index: number) => string,
  log: (line: string) => void,
): Promise<BatchReadRow[]> {
  const keys = Array.from({ length: count }, (_, i) => keyOf(i));
  const fillStartMs = performance.now();
  await inFlight(keys, FILL_IN_FLIGHT, async (key) => {
    const nowMs = Date.now();
    const expiresAtMs = nowMs + RETENTION_MS;
    const claim = { key, fingerprint: 'fp', token: `t-${key}`, nowMs, leaseExpiresAtMs: nowMs + 30_000 };
    await store.claim({ ...claim, expiresAtMs });
    await store.complete({ key, token: claim.token, result: new Uint8Array(64), nowMs, expiresAtMs });
  });
  log(`    batch reads: ${count.toLocaleString('en-US')} keys completed in ${msSince(fillStartMs)} ms`);

  // Warm: the first batches open connections and prepare statements.
  for (let start = 0; start < Math.min(count, 5 * BATCH); start += BATCH) {
    await getMany(store, keys.slice(start, start + BATCH), Date.now());
  }
  const rows: BatchReadRow[] = [];
  const add = (how: BatchReadRow['how'], startMs: number, found: number) => {
    if (found !== count) throw new Error(`${name} ${how}: found ${found} of ${count} completed keys`);
    const keysPerSec = (count * 1000) / (performance.now() - startMs);
    rows.push({ store: name, how, keys: count, keysPerSec });
    log(`    ${how.padEnd(13)}: ${Math.round(keysPerSec).toLocaleString('en-US')} keys/s`);
  };

  let startMs = performance.now();
  let found = 0;
  for (let start = 0; start < count; start += BATCH) {
    const records = await getMany(store, keys.slice(start, start + BATCH), Date.now());
    found += records.filter((record) => record?.state === 'completed').length;
  }
  add('getMany x1000', startMs, found);

  startMs = performance.now();
  found = 0;
  await inFlight(keys, GET_IN_FLIGHT, async (key) => {
    if ((await store.get(key, Date.now()))?.state === 'completed') found++;
  });
  add('get x32', startMs, found);
  return rows;
}

/** Runs `work` for every item, `most` at a time. */
async function inFlight<T>(items: readonly T[], most: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: most }, worker));
}

function msSince(startMs: number): number {
  return Math.round(performance.now() - startMs);
}
