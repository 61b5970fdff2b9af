/**
 * Conformance scenarios about the claim and the token that fences it: who wins, what the others
 * see, and that a stale token changes nothing. The clock is passed in, so nothing sleeps.
 */
import assert from 'node:assert/strict';
import { bytes, claimInput, HOUR_MS, type ScenarioContext } from './conformance-inputs.js';

/** One claim wins, a second sees it in progress, complete stores the result, a third replays it. */
export async function claimCompleteReplay({ store }: ScenarioContext): Promise<void> {
  const t = Date.now();
  const first = await store.claim(claimInput('k1', { nowMs: t, token: 'token-a' }));
  assert.equal(first.claimed, true);
  assert.equal(first.claimed && first.takeover, false);
  assert.equal(first.record.state, 'in_progress');
  assert.equal(first.record.token, 'token-a');
  assert.equal(first.record.attempts, 1);
  assert.equal(first.record.result, null);
  assert.equal(first.record.createdAtMs, t);

  const second = await store.claim(claimInput('k1', { nowMs: t + 1, token: 'token-b' }));
  assert.equal(second.claimed, false);
  assert.equal(second.record.state, 'in_progress');
  assert.equal(second.record.token, 'token-a');

  const result = new TextEncoder().encode('{"id":"ch_1"}');
  assert.equal(
    await store.complete({ key: 'k1', token: 'token-a', result, nowMs: t + 2, expiresAtMs: t + HOUR_MS }),
    true,
  );
  const stored = await store.get('k1', t + 3);
  assert.equal(stored?.state, 'completed');
  assert.deepEqual(bytes(stored?.result), bytes(result));
  assert.equal(stored?.expiresAtMs, t + HOUR_MS);
  assert.equal(stored?.updatedAtMs, t + 2);

  const third = await store.claim(claimInput('k1', { nowMs: t + 4, token: 'token-c' }));
  assert.equal(third.claimed, false);
  assert.equal(third.record.state, 'completed');
  assert.deepEqual(bytes(third.record.result), bytes(result));
  assert.equal(
    await store.complete({ key: 'k1', token: 'token-a', result, nowMs: t + 5, expiresAtMs: t + HOUR_MS }),
    false,
  );
}

/** A released key can be claimed again from scratch. */
export async function releaseAndRetry({ store }: ScenarioContext): Promise<void> {
  const t = Date.now();
  await store.claim(claimInput('k', { nowMs: t, token: 'a' }));
  assert.equal(await store.release('k', 'a'), true);
  assert.equal(await store.get('k'), null);
  assert.equal(await store.release('k', 'a'), false);
  const again = await store.claim(claimInput('k', { nowMs: t + 1, token: 'b' }));
  assert.equal(again.claimed, true);
  assert.equal(again.record.attempts, 1);
  assert.equal(again.record.token, 'b');
}

/** Another fingerprint never claims the key, not even after its lease ends. */
export async function fingerprintMismatch({ store }: ScenarioContext): Promise<void> {
  const t = Date.now();
  await store.claim(claimInput('k', { nowMs: t, token: 'a', fingerprint: 'fp-1', leaseMs: 1000 }));
  const during = await store.claim(claimInput('k', { nowMs: t + 1, token: 'b', fingerprint: 'fp-2' }));
  assert.equal(during.claimed, false);
  assert.equal(during.record.fingerprint, 'fp-1');
  const after = await store.claim(claimInput('k', { nowMs: t + 5000, token: 'c', fingerprint: 'fp-2' }));
  assert.equal(after.claimed, false);
  assert.equal(after.record.token, 'a');
  assert.equal(after.record.fingerprint, 'fp-1');
}

/** Keys that share a prefix or differ in case are separate records. */
export async function keyIsolation({ store }: ScenarioContext): Promise<void> {
  const t = Date.now();
  for (const key of ['abc', 'abcd', 'ABC', 'ab']) {
    const outcome = await store.claim(claimInput(key, { nowMs: t, token: `t-${key}` }));
    assert.equal(outcome.claimed, true, `claim of ${key}`);
  }
  const result = new Uint8Array([1]);
  assert.equal(await store.complete({ key: 'abc', token: 't-abc', result, nowMs: t, expiresAtMs: t + HOUR_MS }), true);
  assert.equal((await store.get('abcd'))?.state, 'in_progress');
  assert.equal((await store.get('ABC'))?.token, 't-ABC');
}

/** After the lease ends one caller takes over; the old holder can no longer complete. */
export async function leaseTakeover({ store }: ScenarioContext): Promise<void> {
  const t = Date.now();
  await store.claim(claimInput('k', { nowMs: t, token: 'old', leaseMs: 1000 }));
  const early = await store.claim(claimInput('k', { nowMs: t + 999, token: 'early' }));
  assert.equal(early.claimed, false);
  const late = await store.claim(claimInput('k', { nowMs: t + 1000, token: 'new', leaseMs: 1000 }));
  assert.equal(late.claimed, true);
  assert.equal(late.claimed && late.takeover, true);
  assert.equal(late.record.attempts, 2);
  assert.equal(late.record.createdAtMs, t);
  assert.equal(late.record.leaseExpiresAtMs, t + 2000);
  const result = new Uint8Array([7]);
  assert.equal(
    await store.complete({ key: 'k', token: 'old', result, nowMs: t + 1001, expiresAtMs: t + HOUR_MS }),
    false,
  );
  assert.equal(
    await store.complete({ key: 'k', token: 'new', result, nowMs: t + 1002, expiresAtMs: t + HOUR_MS }),
    true,
  );
  assert.equal((await store.get('k'))?.state, 'completed');
}

/** Complete, release and extend are refused with a stale token and leave the record untouched. */
export async function staleTokens({ store }: ScenarioContext): Promise<void> {
  const t = Date.now();
  const result = new Uint8Array([1]);
  await store.claim(claimInput('k', { nowMs: t, token: 'old', leaseMs: 100 }));
  await store.claim(claimInput('k', { nowMs: t + 100, token: 'new', leaseMs: 1000 }));
  const stale = { key: 'k', token: 'old', nowMs: t + 101, leaseExpiresAtMs: t + 99_999, expiresAtMs: t + HOUR_MS };
  assert.equal(await store.extend(stale), false);
  assert.equal(await store.release('k', 'old'), false);
  assert.equal(
    await store.complete({ key: 'k', token: 'old', result, nowMs: t + 102, expiresAtMs: t + HOUR_MS }),
    false,
  );
  const record = await store.get('k');
  assert.equal(record?.token, 'new');
  assert.equal(record?.state, 'in_progress');
  assert.equal(record?.leaseExpiresAtMs, t + 1100);

  const extension = { key: 'k', token: 'new', nowMs: t + 200, leaseExpiresAtMs: t + 5000, expiresAtMs: t + HOUR_MS };
  assert.equal(await store.extend(extension), true);
  assert.equal((await store.get('k'))?.leaseExpiresAtMs, t + 5000);
  await store.complete({ key: 'k', token: 'new', result, nowMs: t + 300, expiresAtMs: t + HOUR_MS });
  // A completed record is final: even its own token can no longer extend or release it.
  assert.equal(await store.extend({ ...extension, nowMs: t + 301, leaseExpiresAtMs: t + 9000 }), false);
  assert.equal(await store.release('k', 'new'), false);
  assert.equal((await store.get('k'))?.state, 'completed');
}

/** Many concurrent claims of one key from this process have exactly one winner, and all see its token. */
export async function concurrentClaims({ store, counts }: ScenarioContext): Promise<void> {
  const t = Date.now();
  const outcomes = await Promise.all(
    Array.from({ length: counts.concurrentClaims }, (_, i) =>
      store.claim(claimInput('hot', { nowMs: t, token: `t-${i}` })),
    ),
  );
  const winners = outcomes.filter((o) => o.claimed);
  assert.equal(winners.length, 1);
  const winnerToken = winners[0]?.record.token;
  for (const outcome of outcomes) assert.equal(outcome.record.token, winnerToken);
  assert.equal((await store.get('hot'))?.token, winnerToken);
}
