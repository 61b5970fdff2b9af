/**
 * Conformance scenarios for the operator's calls of an `AdminStore`: list and its page rules,
 * delete, and sweep. Each declares what it needs, so a store without them is skipped, saying why.
 */
import assert from 'node:assert/strict';
import { ErrorCode } from '../core/errors.js';
import { StoreLimits } from '../core/store.js';
import { admin, claimInput, HOUR_MS, hasCode, listAll, type ScenarioContext } from './conformance-inputs.js';

/** Pages through every record once, filters by state and by expiry, and ends on the last full page. */
export async function listing(context: ScenarioContext): Promise<void> {
  const store = admin(context.store);
  const t = Date.now();
  const keys = Array.from({ length: 25 }, (_, i) => `key-${String(i).padStart(2, '0')}`);
  for (const key of keys) await store.claim(claimInput(key, { nowMs: t, token: 'a' }));
  for (const key of keys.slice(0, 5)) {
    await store.complete({ key, token: 'a', result: new Uint8Array([1]), nowMs: t, expiresAtMs: t + HOUR_MS });
  }
  // Three records whose retention ends first, to filter by `nowMs`.
  const soon = ['soon-0', 'soon-1', 'soon-2'];
  for (const key of soon) await store.claim(claimInput(key, { nowMs: t, token: 'a', expiresAtMs: t + 60_000 }));
  const all = [...keys, ...soon].sort();

  const tens: number[] = [];
  assert.deepEqual((await listAll(store, { limit: 10 }, tens)).sort(), all);
  assert.deepEqual(tens, [10, 10, 8], 'pages of 10 over 28 records');
  const sevens: number[] = [];
  assert.deepEqual((await listAll(store, { limit: 7 }, sevens)).sort(), all);
  assert.deepEqual(sevens, [7, 7, 7, 7], 'the last full page has no cursor: no empty page follows');
  const whole = await store.list({ limit: 28 });
  assert.equal(whole.records.length, 28);
  assert.equal(whole.nextCursor, undefined, 'one page holds them all');

  assert.deepEqual((await listAll(store, { state: 'completed', limit: 2 })).sort(), keys.slice(0, 5));
  assert.deepEqual((await listAll(store, { state: 'in_progress' })).sort(), [...keys.slice(5), ...soon].sort());
  assert.deepEqual((await listAll(store, { nowMs: t + 60_000, limit: 5 })).sort(), keys, 'expired by nowMs: left out');
  assert.deepEqual((await listAll(store, { nowMs: t + 59_999 })).sort(), all);
  const [completed] = (await store.list({ state: 'completed', limit: 1 })).records;
  assert.deepEqual([...(completed?.result ?? [])], [1], 'listed records are whole, result included');
}

/** `limit` is a whole number from 1 to 1000, 100 when not given; anything else is `INVALID_OPTIONS`. */
export async function listLimits(context: ScenarioContext): Promise<void> {
  const store = admin(context.store);
  for (const limit of [0, -1, 1.5, Number.NaN, StoreLimits.maxListLimit + 1]) {
    await assert.rejects(store.list({ limit }), hasCode(ErrorCode.INVALID_OPTIONS), `limit ${limit}`);
  }
  const t = Date.now();
  const count = StoreLimits.defaultListLimit + 1;
  await Promise.all(
    Array.from({ length: count }, (_, i) => store.claim(claimInput(`key-${i}`, { nowMs: t, token: 'a' }))),
  );
  const first = await store.list();
  assert.equal(first.records.length, StoreLimits.defaultListLimit, 'a page holds 100 records by default');
  assert.notEqual(first.nextCursor, undefined);
  const second = await store.list({ cursor: first.nextCursor as string });
  assert.equal(second.records.length, 1);
  assert.equal(second.nextCursor, undefined);
  const most = await store.list({ limit: StoreLimits.maxListLimit });
  assert.equal(most.records.length, count);
  assert.equal(most.nextCursor, undefined);
}

/** Delete removes a record whatever its state, once. */
export async function remove(context: ScenarioContext): Promise<void> {
  const store = admin(context.store);
  const t = Date.now();
  await store.claim(claimInput('k', { nowMs: t, token: 'a' }));
  await store.claim(claimInput('done', { nowMs: t, token: 'a' }));
  await store.complete({ key: 'done', token: 'a', result: new Uint8Array([1]), nowMs: t, expiresAtMs: t + HOUR_MS });
  assert.equal(await store.delete('k'), true);
  assert.equal(await store.delete('k'), false);
  assert.equal(await store.get('k'), null);
  assert.equal(await store.delete('done'), true);
  assert.equal(await store.get('done'), null);
  assert.equal((await store.claim(claimInput('k', { nowMs: t, token: 'b' }))).claimed, true);
}

/** Sweep deletes expired records only, at most `limit` per call; `limit` below 1 or fractional is `INVALID_OPTIONS`. */
export async function sweeping(context: ScenarioContext): Promise<void> {
  const store = admin(context.store);
  const sweep = store.sweep?.bind(store);
  assert.ok(sweep !== undefined, 'the scenario runs only on a store with sweep');
  const t = Date.now();
  for (let i = 0; i < 5; i++) {
    await store.claim(claimInput(`short-${i}`, { nowMs: t, token: 's', expiresAtMs: t + 60_000 }));
  }
  for (let i = 0; i < 3; i++) {
    await store.claim(claimInput(`long-${i}`, { nowMs: t, token: 'l', expiresAtMs: t + 10 * HOUR_MS }));
  }
  assert.equal(await sweep(t + 59_999), 0);
  assert.equal(await sweep(t + 60_000, 2), 2);
  assert.equal(await sweep(t + 60_000), 3);
  assert.equal(await sweep(t + 60_000), 0);
  assert.deepEqual((await listAll(store)).sort(), ['long-0', 'long-1', 'long-2']);
  for (const limit of [0, -1, 1.5]) {
    await assert.rejects(sweep(t + 60_000, limit), hasCode(ErrorCode.INVALID_OPTIONS), `limit ${limit}`);
  }
}
