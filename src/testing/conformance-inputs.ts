/** Inputs and readers the store conformance scenarios share. */
import type { ClaimInput, Store } from '../core/store.js';

export const HOUR_MS = 3_600_000;

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

/** Every key `list` returns, page by page with `options`; fails if it does not end within 1000 pages. */
export async function listAll(
  store: Store,
  options: { state?: 'completed' | 'in_progress'; limit?: number } = {},
): Promise<string[]> {
  const keys = new Set<string>();
  let cursor: string | undefined;
  for (let page = 0; page < 1000; page++) {
    const result = await store.list({ ...options, ...(cursor === undefined ? {} : { cursor }) });
    for (const record of result.records) keys.add(record.key);
    cursor = result.nextCursor;
    if (cursor === undefined) return [...keys];
  }
  throw new Error('list() did not finish within 1000 pages');
}
