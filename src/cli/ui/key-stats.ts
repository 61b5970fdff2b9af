/**
 * What the dashboard can tell from the records alone: how many keys are in each state, and
 * keys claimed and taken over per time bucket. The dashboard is its own process, so it sees
 * what the store keeps, not what happened inside `idem serve` (see metrics-sampler.ts for that).
 */
import type { AdminStore, IdempotencyRecord } from '../../core/store.js';
import { StoreLimits } from '../../core/store.js';

/** Records read for the counts and the plot at most: a bigger store is reported as sampled. */
export const SCAN_LIMIT = 20_000;
/** Buckets on the plot's time axis. */
export const BUCKETS = 30;
/** The shortest and longest time the plot spans, in ms. */
const MIN_SPAN_MS = 60_000;
const MAX_SPAN_MS = 7 * 86_400_000;

/** Keys by state, as an operator reads them. */
export interface StateCounts {
  /** In progress, lease still held: a holder is (or may be) working. */
  running: number;
  /** In progress, lease over: the holder is gone; the next request takes it over, or release it. */
  stuck: number;
  /** Completed: the stored result is replayed. */
  completed: number;
  /** Past retention: treated as absent, deleted by `idem keys sweep`. */
  expired: number;
}

/** One bucket of the plot. */
export interface Bucket {
  /** The bucket's start (ms since epoch). */
  startMs: number;
  /** Records first claimed in this bucket (`createdAtMs`). */
  claimed: number;
  /** Takeovers of records last updated in this bucket (`attempts - 1` each, at `updatedAtMs`). */
  takeovers: number;
}

export interface KeyStats {
  counts: StateCounts;
  /** Records with at least one takeover (`attempts > 1`), and the takeovers they add up to. */
  takenOver: { records: number; takeovers: number };
  buckets: Bucket[];
  bucketMs: number;
  /** Records read; `truncated` when the store holds more than `SCAN_LIMIT`. */
  scanned: number;
  truncated: boolean;
  nowMs: number;
}

/** Reads up to `SCAN_LIMIT` records and counts them. */
export async function keyStats(store: AdminStore, nowMs: number): Promise<KeyStats> {
  const records: IdempotencyRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list({
      limit: Math.min(StoreLimits.maxListLimit, SCAN_LIMIT - records.length),
      ...(cursor === undefined ? {} : { cursor }),
    });
    records.push(...page.records);
    cursor = page.nextCursor;
  } while (cursor !== undefined && records.length < SCAN_LIMIT);
  return countRecords(records, nowMs, cursor !== undefined);
}

/** The counts and buckets of `records`, as of `nowMs`. */
export function countRecords(records: readonly IdempotencyRecord[], nowMs: number, truncated: boolean): KeyStats {
  const counts: StateCounts = { running: 0, stuck: 0, completed: 0, expired: 0 };
  const takenOver = { records: 0, takeovers: 0 };
  let oldestMs = nowMs;
  for (const record of records) {
    counts[stateOf(record, nowMs)] += 1;
    if (record.attempts > 1) {
      takenOver.records += 1;
      takenOver.takeovers += record.attempts - 1;
    }
    oldestMs = Math.min(oldestMs, record.createdAtMs);
  }
  const span = Math.min(MAX_SPAN_MS, Math.max(MIN_SPAN_MS, nowMs - oldestMs + 1));
  const bucketMs = Math.ceil(span / BUCKETS);
  const firstMs = nowMs - bucketMs * BUCKETS;
  const buckets: Bucket[] = Array.from({ length: BUCKETS }, (_, i) => ({
    startMs: firstMs + i * bucketMs,
    claimed: 0,
    takeovers: 0,
  }));
  const at = (ms: number) => buckets[Math.floor((ms - firstMs) / bucketMs)];
  for (const record of records) {
    const claimed = at(record.createdAtMs);
    if (claimed !== undefined) claimed.claimed += 1;
    const taken = record.attempts > 1 ? at(record.updatedAtMs) : undefined;
    if (taken !== undefined) taken.takeovers += record.attempts - 1;
  }
  return { counts, takenOver, buckets, bucketMs, scanned: records.length, truncated, nowMs };
}

/** Which count a record adds to. */
export function stateOf(record: IdempotencyRecord, nowMs: number): keyof StateCounts {
  if (record.expiresAtMs <= nowMs) return 'expired';
  if (record.state === 'completed') return 'completed';
  return record.leaseExpiresAtMs > nowMs ? 'running' : 'stuck';
}
