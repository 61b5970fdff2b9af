import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import type { IdempotencyRecord, Store } from '../../src/core/store.js';
import { checkGetManyKeys, getMany, StoreLimits } from '../../src/store-kit/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';

/** `getMany` from idem/store-kit, on stores with and without their own batch read. */

const HOUR_MS = 3_600_000;

function hasCode(code: ErrorCode) {
  return (error: unknown): boolean => {
    assert.ok(isIdempotencyError(error, code), `expected ${code}, got ${String(error)}`);
    return true;
  };
}

/** A memory store holding `done` keys completed and `held` keys in progress, each retained for an hour from `t`. */
async function filledStore(t: number, done: string[], held: string[] = []): Promise<MemoryStore> {
  const store = new MemoryStore({ maxRecords: 10_000 });
  for (const key of [...done, ...held]) {
    const claim = { key, fingerprint: 'fp', token: `t-${key}`, nowMs: t };
    await store.claim({ ...claim, leaseExpiresAtMs: t + 30_000, expiresAtMs: t + HOUR_MS });
  }
  for (const key of done) {
    const result = new Uint8Array([1, 2]);
    await store.complete({ key, token: `t-${key}`, result, nowMs: t, expiresAtMs: t + HOUR_MS });
  }
  return store;
}

/** The hot path of `inner` alone, with no getMany, counting how many `get` calls are in flight at once. */
function withoutGetMany(inner: Store): Store & { mostInFlight: number; gets: number } {
  let inFlight = 0;
  const wrapper = {
    name: 'plain',
    mostInFlight: 0,
    gets: 0,
    claim: inner.claim.bind(inner),
    complete: inner.complete.bind(inner),
    release: inner.release.bind(inner),
    extend: inner.extend.bind(inner),
    close: inner.close.bind(inner),
    async get(key: string, nowMs?: number): Promise<IdempotencyRecord | null> {
      inFlight++;
      wrapper.gets++;
      wrapper.mostInFlight = Math.max(wrapper.mostInFlight, inFlight);
      try {
        // Yields to the event loop, as a read over the network would, so other reads can start.
        await new Promise((resolve) => setImmediate(resolve));
        return await inner.get(key, nowMs);
      } finally {
        inFlight--;
      }
    },
  };
  return wrapper;
}

/** What `get` answers for each key, one call after the other. */
async function oneByOne(store: Store, keys: readonly string[], nowMs?: number): Promise<(IdempotencyRecord | null)[]> {
  const records: (IdempotencyRecord | null)[] = [];
  for (const key of keys) records.push(await store.get(key, nowMs));
  return records;
}

describe('getMany from idem/store-kit', () => {
  it('reads a store without getMany with get, in the order asked, 16 reads in flight at most', async () => {
    const t = Date.now();
    const done = Array.from({ length: 60 }, (_, i) => `done-${i}`);
    const inner = await filledStore(t, done, ['held']);
    const store = withoutGetMany(inner);
    const keys = ['held', ...done.toReversed(), 'missing', 'done-3', 'held', 'missing'];
    const answers = await getMany(store, keys, t);
    assert.deepEqual(answers, await oneByOne(inner, keys, t));
    assert.deepEqual(
      answers.map((record) => record?.key ?? null),
      keys.map((key) => (key === 'missing' ? null : key)),
    );
    assert.equal(store.gets, keys.length, 'one get per key asked');
    assert.equal(store.mostInFlight, 16, 'reads run 16 at a time');
    assert.deepEqual(await getMany(store, [], t), []);
  });

  it('leaves out expired records on a store without getMany exactly as get does, and keeps them without nowMs', async () => {
    const t = Date.now();
    const store = withoutGetMany(await filledStore(t, ['a', 'b']));
    const expiry = t + HOUR_MS;
    assert.deepEqual(
      (await getMany(store, ['a', 'b'], expiry - 1)).map((record) => record?.key ?? null),
      ['a', 'b'],
    );
    assert.deepEqual(await getMany(store, ['a', 'b'], expiry), [null, null]);
    assert.deepEqual(
      (await getMany(store, ['a', 'b'])).map((record) => record?.key ?? null),
      ['a', 'b'],
    );
  });

  it('splits a list longer than 1000 keys into calls of at most 1000 on a store with getMany, keeping the order', async () => {
    const t = Date.now();
    const done = Array.from({ length: 2500 }, (_, i) => `done-${i}`).filter((_, i) => i % 3 !== 0);
    const store = await filledStore(t, done);
    const sizes: number[] = [];
    const own = store.getMany.bind(store);
    store.getMany = (keys, nowMs) => {
      sizes.push(keys.length);
      return own(keys, nowMs);
    };
    const keys = Array.from({ length: 2500 }, (_, i) => `done-${2499 - i}`);
    const answers = await getMany(store, keys, t);
    assert.deepEqual(sizes, [1000, 1000, 500]);
    assert.deepEqual(answers, await oneByOne(store, keys, t));
    assert.equal(answers.filter((record) => record !== null).length, done.length);
  });

  it('refuses anything but an array of keys with INVALID_OPTIONS, on stores with and without getMany', async () => {
    const store = await filledStore(Date.now(), []);
    for (const target of [store, withoutGetMany(store)]) {
      await assert.rejects(getMany(target, 'key' as unknown as string[]), hasCode(ErrorCode.INVALID_OPTIONS));
      await assert.rejects(getMany(target, undefined as unknown as string[]), hasCode(ErrorCode.INVALID_OPTIONS));
    }
  });

  it("answers STORE_UNAVAILABLE when a store's getMany answers another number of records than keys", async () => {
    const store = await filledStore(Date.now(), ['a']);
    store.getMany = async () => [null];
    await assert.rejects(getMany(store, ['a', 'b']), hasCode(ErrorCode.STORE_UNAVAILABLE));
  });

  it("passes a store's own error through as the store threw it", async () => {
    const store = await filledStore(Date.now(), ['a']);
    await store.close();
    await assert.rejects(getMany(store, ['a']), hasCode(ErrorCode.STORE_CLOSED));
    await assert.rejects(getMany(withoutGetMany(store), ['a']), hasCode(ErrorCode.STORE_CLOSED));
  });
});

describe('checkGetManyKeys', () => {
  it('accepts from 0 to StoreLimits.getManyKeys (1000) keys, duplicates included', () => {
    const keys = Array.from({ length: StoreLimits.getManyKeys }, () => 'same');
    assert.equal(checkGetManyKeys('mine', keys), keys);
    assert.deepEqual(checkGetManyKeys('mine', []), []);
  });

  it('refuses 1001 keys, and anything but an array, with INVALID_OPTIONS naming the store', () => {
    const many = Array.from({ length: StoreLimits.getManyKeys + 1 }, (_, i) => `k${i}`);
    assert.throws(() => checkGetManyKeys('mine', many), hasCode(ErrorCode.INVALID_OPTIONS));
    assert.throws(() => checkGetManyKeys('mine', many), /\[idem\] \[mine\] getMany\(\): at most 1000 keys/);
    assert.throws(() => checkGetManyKeys('mine', 'k' as unknown as string[]), hasCode(ErrorCode.INVALID_OPTIONS));
  });
});
