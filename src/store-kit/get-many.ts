/** Batch reads for any store: its own `getMany` when it has one, else `get` for each key. */
import { ErrorCode, IdempotencyError } from '../core/errors.js';
import { type IdempotencyRecord, type Store, StoreLimits } from '../core/store.js';
import { invalidOptions } from './errors.js';

/** How many `get` calls the fallback keeps in flight at once on a store without `getMany`. */
const fallbackConcurrency = 16;

/**
 * The answer `store.get(key, nowMs)` would give for each of `keys`, in the same order: the record,
 * or `null` when there is none or (with `nowMs`) it has expired. Any number of keys, duplicates
 * allowed. Uses `store.getMany` when the store has it, in calls of at most
 * `StoreLimits.getManyKeys` (1000) keys, one after the other; otherwise calls `store.get` for each
 * key, 16 at a time. Refuses anything but an array with `INVALID_OPTIONS`; a store's error passes
 * through as the store threw it, and a store whose `getMany` answers a different number of records
 * than keys is `STORE_UNAVAILABLE`.
 *
 * @example
 * ```ts
 * import { getMany } from 'idem/store-kit';
 *
 * const records = await getMany(store, itemKeys, Date.now());
 * const todo = itemKeys.filter((_, i) => records[i]?.state !== 'completed');
 * ```
 */
export async function getMany(
  store: Store,
  keys: readonly string[],
  nowMs?: number,
): Promise<(IdempotencyRecord | null)[]> {
  if (!Array.isArray(keys)) {
    throw invalidOptions(store.name, `getMany(): keys must be an array of keys, got ${typeof keys}.`);
  }
  if (typeof store.getMany === 'function') return viaGetMany(store, store.getMany.bind(store), keys, nowMs);
  return viaGet(store, keys, nowMs);
}

type GetManyCall = NonNullable<Store['getMany']>;

async function viaGetMany(
  store: Store,
  call: GetManyCall,
  keys: readonly string[],
  nowMs: number | undefined,
): Promise<(IdempotencyRecord | null)[]> {
  if (keys.length <= StoreLimits.getManyKeys) return checkedAnswer(store, keys, await call(keys, nowMs));
  const records: (IdempotencyRecord | null)[] = [];
  for (let start = 0; start < keys.length; start += StoreLimits.getManyKeys) {
    const chunk = keys.slice(start, start + StoreLimits.getManyKeys);
    records.push(...checkedAnswer(store, chunk, await call(chunk, nowMs)));
  }
  return records;
}

// A store that answers a different number of records would shift every answer after the gap
// onto the wrong key: a finished item could be taken for a missing one, or the reverse.
function checkedAnswer(
  store: Store,
  keys: readonly string[],
  records: (IdempotencyRecord | null)[],
): (IdempotencyRecord | null)[] {
  if (Array.isArray(records) && records.length === keys.length) return records;
  const got = Array.isArray(records) ? records.length : typeof records;
  throw new IdempotencyError(
    ErrorCode.STORE_UNAVAILABLE,
    `[idem] [${store.name}] getMany() answered ${got} records for ${keys.length} keys; the store must answer one per key, in order (fix the store's getMany).`,
  );
}

async function viaGet(
  store: Store,
  keys: readonly string[],
  nowMs: number | undefined,
): Promise<(IdempotencyRecord | null)[]> {
  const records = new Array<IdempotencyRecord | null>(keys.length).fill(null);
  let next = 0;
  // Each worker takes the next unread position, so at most `fallbackConcurrency` reads are in
  // flight and every answer lands at its own key's index whatever order they finish in.
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const index = next++;
      records[index] = await store.get(keys[index] as string, nowMs);
    }
  };
  const workers = Array.from({ length: Math.min(fallbackConcurrency, keys.length) }, worker);
  await Promise.all(workers);
  return records;
}
