/**
 * Conformance scenarios for the batch read, `getMany` (optional in the contract): it answers what
 * `get` answers for every key, in order, at most `StoreLimits.getManyKeys` keys a call. A store
 * without it is skipped; `getMany` from `idem/store-kit` then reads with `get`, key by key.
 */
import assert from 'node:assert/strict';
import { ErrorCode } from '../core/errors.js';
import { type IdempotencyRecord, type Store, StoreLimits } from '../core/store.js';
import { bytes, claimInput, HOUR_MS, hasCode, padToBytes, type ScenarioContext } from './conformance-inputs.js';
import type { ScenarioEntry } from './store-scenarios.js';

type GetMany = (keys: readonly string[], nowMs?: number) => Promise<(IdempotencyRecord | null)[]>;

/** The store's `getMany`; the scenarios run only on stores that have it (`needs: 'getMany'`). */
function getManyOf(store: Store): GetMany {
  const getMany = store.getMany?.bind(store);
  assert.ok(getMany !== undefined, 'the scenario runs only on a store with getMany');
  return getMany;
}

/** A record with its result as a plain array, so records from two reads compare with `deepEqual`. */
function plain(record: IdempotencyRecord | null): unknown {
  return record === null ? null : { ...record, result: bytes(record.result) };
}

/** Checks that `getMany(keys, nowMs)` answers, key by key, exactly what `get(key, nowMs)` does. */
async function assertSameAsGet(store: Store, keys: readonly string[], nowMs: number | undefined): Promise<void> {
  const many = await getManyOf(store)(keys, nowMs);
  assert.equal(many.length, keys.length, 'one answer per key');
  for (const [i, key] of keys.entries()) {
    const one = await store.get(key, nowMs);
    assert.deepEqual(plain(many[i] ?? null), plain(one), `getMany answers what get does for ${key} at ${nowMs}`);
  }
}

/**
 * Keys of every kind (in progress, completed with bytes, missing, given twice, text that SQL
 * arrays and JSON must escape) come back in the order asked, each as `get` answers it.
 */
export async function getManyAnswersAsGet({ store }: ScenarioContext): Promise<void> {
  const t = Date.now();
  const getMany = getManyOf(store);
  assert.deepEqual(await getMany([]), [], 'an empty list answers []');
  assert.deepEqual(await getMany([], t), [], 'an empty list answers [] with nowMs too');

  const odd = ['NULL', '"quoted"', "it's", 'back\\slash', 'a,b', '{tag}', 'ключ-🔑', ' spaced ', 'Case', 'case'];
  const long = padToBytes('{clé}-🔑-', StoreLimits.keyBytes);
  const done = ['done-1', 'done-2', ...odd, long];
  for (const [i, key] of [...done, 'held'].entries()) await store.claim(claimInput(key, { nowMs: t, token: `t-${i}` }));
  for (const [i, key] of done.entries()) {
    const result = new Uint8Array([i, 0, 255]);
    await store.complete({ key, token: `t-${i}`, result, nowMs: t + 1, expiresAtMs: t + HOUR_MS });
  }

  const keys = ['held', 'missing', 'done-2', ...[...odd].reverse(), 'done-1', 'held', long, 'missing', 'done-2'];
  const answers = await getMany(keys, t + 2);
  assert.deepEqual(
    answers.map((record) => record?.key ?? null),
    keys.map((key) => (key === 'missing' ? null : key)),
    'each answer is the record of the key at the same index, null for a key without one',
  );
  assert.equal(answers[0]?.state, 'in_progress');
  assert.equal(answers[0]?.result, null);
  assert.equal(answers[2]?.state, 'completed');
  assert.deepEqual(bytes(answers[2]?.result), [1, 0, 255]);
  assert.deepEqual(plain(answers[0] ?? null), plain(answers[keys.indexOf('held', 1)] ?? null), 'a key given twice');
  await assertSameAsGet(store, keys, t + 2);
  await assertSameAsGet(store, keys, undefined);
}

/** With `nowMs`, an expired record is `null`, as `get` says; without it, the record still held comes back. */
export async function getManyExpiry({ store }: ScenarioContext): Promise<void> {
  const t = Date.now();
  const expiresAtMs = t + 60_000;
  await store.claim(claimInput('short', { nowMs: t, token: 'a', expiresAtMs }));
  await store.complete({ key: 'short', token: 'a', result: new Uint8Array([1]), nowMs: t, expiresAtMs });
  await store.claim(claimInput('short-held', { nowMs: t, token: 'b', expiresAtMs }));
  await store.claim(claimInput('long', { nowMs: t, token: 'c' }));
  const keys = ['short', 'short-held', 'long'];
  const getMany = getManyOf(store);

  const before = await getMany(keys, expiresAtMs - 1);
  assert.deepEqual(
    before.map((record) => record?.key ?? null),
    keys,
    'a millisecond before its retention ends, a record is there',
  );
  const at = await getMany(keys, expiresAtMs);
  assert.deepEqual(
    at.map((record) => record?.key ?? null),
    [null, null, 'long'],
    'from expiresAtMs on, completed and in-progress records alike are absent',
  );
  for (const nowMs of [expiresAtMs - 1, expiresAtMs, undefined]) await assertSameAsGet(store, keys, nowMs);
}

/**
 * A call takes up to `StoreLimits.getManyKeys` (1000) keys; more, or anything but an array, is
 * `INVALID_OPTIONS`; after `close()` it is `STORE_CLOSED`.
 */
export async function getManyLimits({ store }: ScenarioContext): Promise<void> {
  const t = Date.now();
  const getMany = getManyOf(store);
  const keys = Array.from({ length: StoreLimits.getManyKeys }, (_, i) => `key-${i}`);
  const stored = keys.filter((_, i) => i % 7 === 0);
  for (let start = 0; start < stored.length; start += 25) {
    const chunk = stored.slice(start, start + 25);
    await Promise.all(chunk.map((key) => store.claim(claimInput(key, { nowMs: t, token: `t-${key}` }))));
  }

  const answers = await getMany(keys, t);
  assert.equal(answers.length, keys.length);
  for (const [i, key] of keys.entries()) {
    assert.equal(answers[i]?.key ?? null, i % 7 === 0 ? key : null, `answer ${i} of ${keys.length}`);
  }

  const invalid = hasCode(ErrorCode.INVALID_OPTIONS);
  await assert.rejects(getMany([...keys, 'one-more']), invalid, `${keys.length + 1} keys are refused`);
  await assert.rejects(getMany('key-0' as unknown as string[]), invalid, 'a string is not a list of keys');
  await assert.rejects(getMany(undefined as unknown as string[]), invalid, 'nor is undefined');

  await store.close();
  await assert.rejects(getMany(['key-0']), hasCode(ErrorCode.STORE_CLOSED), 'getMany after close');
}

/** The scenarios' entries in the suite's table (`store-scenarios.ts`). */
export const getManyScenarios = {
  getMany: {
    name: 'batch read',
    title:
      'getMany answers what get does for every key, in the order asked: in progress, completed, missing, given twice',
    needs: 'getMany',
    run: getManyAnswersAsGet,
  },
  getManyExpiry: {
    name: 'batch read and expiry',
    title: 'getMany with nowMs leaves out expired records as get does; without it, returns them',
    needs: 'getMany',
    run: getManyExpiry,
  },
  getManyLimits: {
    name: 'batch read limits',
    title:
      'getMany takes up to 1000 keys in one call; 1001, or no array, is INVALID_OPTIONS; after close, STORE_CLOSED',
    needs: 'getMany',
    run: getManyLimits,
  },
} satisfies Record<string, ScenarioEntry>;
