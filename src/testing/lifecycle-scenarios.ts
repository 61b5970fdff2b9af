/** Conformance scenarios about a store's life: ping while it serves, and every call refused after close. */
import assert from 'node:assert/strict';
import { ErrorCode } from '../core/errors.js';
import { isJournalStore } from '../core/journal.js';
import { isAdminStore } from '../core/store.js';
import { claimInput, HOUR_MS, hasCode, type ScenarioContext } from './conformance-inputs.js';

/** Ping resolves on a working store, again and again, and is refused with `STORE_CLOSED` after close. */
export async function pingThenClose({ store }: ScenarioContext): Promise<void> {
  const ping = store.ping?.bind(store);
  assert.ok(ping !== undefined, 'the scenario runs only on a store with ping');
  await ping();
  await ping();
  await store.close();
  await assert.rejects(ping(), hasCode(ErrorCode.STORE_CLOSED));
}

/** Close can be called twice, and every operation after it is refused with `STORE_CLOSED`. */
export async function closeRefusesEverything({ store }: ScenarioContext): Promise<void> {
  const t = Date.now();
  // Used before close, so a store that connects lazily has something to close.
  await store.claim(claimInput('k', { nowMs: t, token: 'a' }));
  await store.close();
  await store.close();
  const closed = hasCode(ErrorCode.STORE_CLOSED);
  const result = new Uint8Array([1]);
  const calls: [string, () => Promise<unknown>][] = [
    ['claim', () => store.claim(claimInput('k', { nowMs: t, token: 'b' }))],
    ['complete', () => store.complete({ key: 'k', token: 'a', result, nowMs: t, expiresAtMs: t + HOUR_MS })],
    ['release', () => store.release('k', 'a')],
    ['extend', () => store.extend({ key: 'k', token: 'a', nowMs: t, leaseExpiresAtMs: t + 1, expiresAtMs: t + 1 })],
    ['get', () => store.get('k')],
  ];
  if (isAdminStore(store)) {
    calls.push(['delete', () => store.delete('k')], ['list', () => store.list()]);
    const { sweep } = store;
    if (sweep !== undefined) calls.push(['sweep', () => sweep.call(store, t)]);
  }
  if (isJournalStore(store)) {
    const reopen = { key: 'k', expectedToken: 'a', token: 'b', nowMs: t, leaseExpiresAtMs: t + 1, expiresAtMs: t + 1 };
    calls.push(
      ['append', () => store.append({ key: 'k', token: 'a', seq: 0, data: result, nowMs: t })],
      ['entries', () => store.entries('k')],
      ['reopen', () => store.reopen(reopen)],
      ['runs', () => store.runs()],
    );
  }
  for (const [operation, call] of calls) await assert.rejects(call(), closed, `${operation} after close`);
}
