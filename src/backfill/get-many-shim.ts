/** Stand-in for store-kit's getMany until the getmany branch is merged (same signature). */
import type { IdempotencyRecord, Store } from '../core/store.js';

export async function getMany(
  store: Store,
  keys: readonly string[],
  nowMs?: number,
): Promise<(IdempotencyRecord | null)[]> {
  const own = (
    store as { getMany?: (keys: readonly string[], nowMs?: number) => Promise<(IdempotencyRecord | null)[]> }
  ).getMany;
  if (typeof own === 'function') return await own.call(store, keys, nowMs);
  return await Promise.all(keys.map((key) => store.get(key, nowMs)));
}
