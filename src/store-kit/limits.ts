/**
 * The contract's rules on `limit` for `list`, `runs` and `sweep` (see `ListOptions`, `RunListOptions`,
 * `AdminStore.sweep`) and on the keys of `getMany`, checked once for every store.
 */
import { StoreLimits } from '../core/store.js';
import { invalidOptions } from './errors.js';

/**
 * The page size `list` (or `runs` of a `JournalStore`, named by `operation`) must use: `limit`
 * when it is a whole number from 1 to `StoreLimits.maxListLimit` (1000),
 * `StoreLimits.defaultListLimit` (100) when it is `undefined`. Anything else throws
 * `INVALID_OPTIONS`, naming `store` and `operation` (default `'list'`).
 */
export function checkListLimit(store: string, limit: number | undefined, operation = 'list'): number {
  if (limit === undefined) return StoreLimits.defaultListLimit;
  if (Number.isInteger(limit) && limit >= 1 && limit <= StoreLimits.maxListLimit) return limit;
  throw invalidOptions(
    store,
    `${operation}(): limit must be a whole number from 1 to ${StoreLimits.maxListLimit}, got ${String(limit)}; page on with nextCursor for more.`,
  );
}

/**
 * The most records `sweep` may delete: `limit` when it is a whole number of at least 1,
 * `StoreLimits.defaultSweepLimit` (1000) when it is `undefined`. Anything else throws
 * `INVALID_OPTIONS`, naming `store`.
 */
export function checkSweepLimit(store: string, limit: number | undefined): number {
  if (limit === undefined) return StoreLimits.defaultSweepLimit;
  if (Number.isSafeInteger(limit) && limit >= 1) return limit;
  throw invalidOptions(store, `sweep(): limit must be a whole number of at least 1, got ${String(limit)}.`);
}

/**
 * The `seq` of a journal `append` (see `AppendInput`): returned when it is a whole number from 0
 * up; anything else throws `INVALID_OPTIONS`, naming `store`. A store that makes the seq part of a
 * name or a BIGINT must not meet `1.5`, `-1` or `1e21`.
 */
export function checkJournalSeq(store: string, seq: number): number {
  if (Number.isSafeInteger(seq) && seq >= 0) return seq;
  throw invalidOptions(store, `append(): seq must be a whole number from 0 up, got ${String(seq)}.`);
}

/**
 * The keys of a `getMany` call (see `Store.getMany`): returned when they are an array of at most
 * `StoreLimits.getManyKeys` (1000) entries; anything else throws `INVALID_OPTIONS`, naming `store`.
 */
export function checkGetManyKeys(store: string, keys: readonly string[]): readonly string[] {
  if (!Array.isArray(keys)) {
    throw invalidOptions(store, `getMany(): keys must be an array of keys, got ${typeof keys}.`);
  }
  if (keys.length > StoreLimits.getManyKeys) {
    throw invalidOptions(
      store,
      `getMany(): at most ${StoreLimits.getManyKeys} keys per call, got ${keys.length}; split the list, or call getMany from idem/store-kit, which does.`,
    );
  }
  return keys;
}
