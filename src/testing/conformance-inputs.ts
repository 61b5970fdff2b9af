/** Inputs, readers and checks the store conformance scenarios share. */
import assert from 'node:assert/strict';
import { type ErrorCode, isIdempotencyError } from '../core/errors.js';
import type { AppendInput, JournalEntry, JournalStore, RunListOptions } from '../core/journal.js';
import type { AdminStore, ClaimInput, ListOptions, Store } from '../core/store.js';
import type { WorkerJob } from './claim-worker.js';

export const HOUR_MS = 3_600_000;

/** What a scenario gets: a fresh, empty store in its own namespace, and how to build it again elsewhere. */
export interface ScenarioContext {
  store: Store;
  /** The namespace the store was built for (`[a-z0-9_]`, at most 40 characters). */
  namespace: string;
  /** How a child process builds the same store (for the cross-process scenarios). */
  job: Pick<WorkerJob, 'factoryModule' | 'createExport' | 'namespace'>;
  /** Processes in the cross-process race, keys each races for, concurrent claims in one process. */
  counts: ScenarioCounts;
}

export interface ScenarioCounts {
  processes: number;
  claimsPerProcess: number;
  concurrentClaims: number;
}

/** A claim of `key` at `over.nowMs`: fingerprint `fp`, a 30 s lease and one hour of retention unless given. */
export function claimInput(
  key: string,
  over: { nowMs: number; token: string; fingerprint?: string; leaseMs?: number; expiresAtMs?: number },
): ClaimInput {
  return {
    key,
    fingerprint: over.fingerprint ?? 'fp',
    token: over.token,
    nowMs: over.nowMs,
    leaseExpiresAtMs: over.nowMs + (over.leaseMs ?? 30_000),
    expiresAtMs: over.expiresAtMs ?? over.nowMs + HOUR_MS,
  };
}

/** The bytes as a plain array, for `deepEqual`; `null` stays `null`. */
export function bytes(value: Uint8Array | null | undefined): number[] | null {
  return value == null ? null : [...value];
}

/** The store as an `AdminStore`; the scenarios that call this declare `needs: 'admin'`. */
export function admin(store: Store): AdminStore {
  return store as AdminStore;
}

/** The store as a `JournalStore`; the scenarios that call this declare `needs: 'journal'`. */
export function journal(store: Store): JournalStore {
  return store as JournalStore;
}

/** The UTF-8 bytes of `text`. */
export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** An append of `seq` to `key` under `token` at `nowMs`; its data is the text `key:seq` unless given. */
export function appendInput(key: string, token: string, seq: number, nowMs: number, data?: Uint8Array): AppendInput {
  return { key, token, seq, nowMs, data: data ?? utf8(`${key}:${seq}`) };
}

/** Entries as `seq@atMs:text` lines (data read as UTF-8), for `deepEqual` with a readable diff. */
export function shown(entries: readonly JournalEntry[]): string[] {
  return entries.map((entry) => `${entry.seq}@${entry.atMs}:${Buffer.from(entry.data).toString('utf8')}`);
}

/**
 * Every key `runs` returns, page by page with `options`, checking the page rules on the way: no
 * page holds more than its limit, and the paging ends (no cursor) within 10,000 pages. A store
 * that scans may return a key on two pages, so the keys come back as a set: every key at least
 * once, sorted.
 */
export async function runsAll(store: JournalStore, options: Omit<RunListOptions, 'cursor'> = {}): Promise<string[]> {
  const keys = new Set<string>();
  const limit = options.limit ?? 100;
  let cursor: string | undefined;
  for (let page = 0; page < 10_000; page++) {
    const result = await store.runs({ ...options, ...(cursor === undefined ? {} : { cursor }) });
    assert.ok(result.keys.length <= limit, `a runs page of limit ${limit} held ${result.keys.length} keys`);
    for (const key of result.keys) keys.add(key);
    cursor = result.nextCursor;
    if (cursor === undefined) return [...keys].sort();
  }
  throw new Error('runs() did not finish within 10,000 pages');
}

/**
 * Every key `list` returns, page by page with `options`, checking the page rules on the way: no
 * page holds more than its limit, a page with a cursor holds exactly its limit, and the listing
 * ends (no cursor) within 1000 pages. `pages` receives the size of each page.
 */
export async function listAll(
  store: AdminStore,
  options: Omit<ListOptions, 'cursor'> = {},
  pages: number[] = [],
): Promise<string[]> {
  const keys = new Set<string>();
  const limit = options.limit ?? 100;
  let cursor: string | undefined;
  for (let page = 0; page < 1000; page++) {
    const result = await store.list({ ...options, ...(cursor === undefined ? {} : { cursor }) });
    pages.push(result.records.length);
    assert.ok(result.records.length <= limit, `a page of limit ${limit} held ${result.records.length} records`);
    if (result.nextCursor !== undefined) {
      assert.equal(result.records.length, limit, 'a page with a nextCursor holds exactly `limit` records');
    }
    for (const record of result.records) keys.add(record.key);
    cursor = result.nextCursor;
    if (cursor === undefined) return [...keys];
  }
  throw new Error('list() did not finish within 1000 pages');
}

/** An `assert.rejects` check that the error is an Idem error with `code`. */
export function hasCode(code: ErrorCode) {
  return (error: unknown): boolean => {
    assert.ok(isIdempotencyError(error, code), `expected ${code}, got ${String(error)}`);
    return true;
  };
}

/** `text` followed by ASCII digits up to exactly `size` UTF-8 bytes (`text` must be shorter). */
export function padToBytes(text: string, size: number): string {
  const padding = size - Buffer.byteLength(text, 'utf8');
  if (padding < 0) throw new Error(`${text} is longer than ${size} bytes`);
  return text + '0123456789'.repeat(Math.ceil(padding / 10)).slice(0, padding);
}
