/**
 * Conformance scenarios about a lease that lives long or is lost: the store keeps the record of a
 * holder that keeps extending its lease past the retention it claimed with, and the engine on top
 * of the store tells a holder whose completion was refused to stop. The clock is passed in, so
 * nothing sleeps.
 */
import assert from 'node:assert/strict';
import { Engine } from '../core/engine.js';
import { ErrorCode, isIdempotencyError } from '../core/errors.js';
import { OutcomeKind } from '../core/outcome.js';
import { claimInput, HOUR_MS, type ScenarioContext } from './conformance-inputs.js';

/** Store level: `extend` raises retention (never lowers it), so no rival claims a live holder's key. */
export async function extendKeepsRetention({ store }: ScenarioContext): Promise<void> {
  const t = Date.now();
  await store.claim(claimInput('k', { nowMs: t, token: 'a', leaseMs: 1000, expiresAtMs: t + 5000 }));
  // The heartbeat keeps the lease alive up to and past the retention end the claim set.
  const extension = { key: 'k', token: 'a', nowMs: t + 4500, leaseExpiresAtMs: t + 5500, expiresAtMs: t + 9500 };
  assert.equal(await store.extend(extension), true);
  const live = await store.get('k', t + 5200);
  assert.equal(live?.token, 'a', 'the record outlives the retention it was claimed with');
  assert.equal(live.leaseExpiresAtMs, t + 5500);
  assert.equal(live.expiresAtMs, t + 9500);
  const rival = await store.claim(claimInput('k', { nowMs: t + 5200, token: 'b', leaseMs: 1000 }));
  assert.equal(rival.claimed, false, 'a rival does not claim the key while its holder is alive');
  assert.equal(rival.record.token, 'a');

  // An extension that asks for an earlier retention end moves the lease but keeps the later retention.
  assert.equal(
    await store.extend({ key: 'k', token: 'a', nowMs: t + 5300, leaseExpiresAtMs: t + 6300, expiresAtMs: t + 5400 }),
    true,
  );
  const kept = await store.get('k', t + 6000);
  assert.equal(kept?.leaseExpiresAtMs, t + 6300);
  assert.equal(kept.expiresAtMs, t + 9500);
  assert.equal(kept.updatedAtMs, t + 5300);

  const result = new Uint8Array([1]);
  assert.equal(await store.complete({ key: 'k', token: 'a', result, nowMs: t + 6000, expiresAtMs: t + HOUR_MS }), true);
  assert.equal((await store.get('k', t + 6001))?.state, 'completed');
}

/**
 * Engine level, heartbeat off: after a takeover, the old holder's `complete` is refused with
 * `LEASE_LOST` and its `signal` aborts with that error, as it would had an extension found out.
 */
export async function lostCompletionAbortsSignal({ store }: ScenarioContext): Promise<void> {
  let nowMs = Date.now();
  const options = { store, leaseMs: 1000, retentionMs: 60_000, heartbeatMs: 0, now: () => nowMs };
  const engine = new Engine(options);
  const first = await engine.begin({ key: 'k', fingerprint: 'fp' });
  assert.equal(first.kind, 'run');
  const signal = first.lease.signal;
  nowMs += 1000;
  const second = await new Engine(options).begin({ key: 'k', fingerprint: 'fp' });
  assert.equal(second.kind, 'run', 'the lease ended: a second caller takes the key over');
  assert.equal(second.lease.attempts, 2);
  assert.equal(signal.aborted, false, 'nothing has told the first holder yet');

  const outcome = { kind: OutcomeKind.value, payload: new Uint8Array([1]) };
  await assert.rejects(first.lease.complete(outcome), (error: unknown) => {
    assert.ok(isIdempotencyError(error, ErrorCode.LEASE_LOST), `expected LEASE_LOST, got ${String(error)}`);
    return true;
  });
  assert.equal(signal.aborted, true, 'the refused completion aborts the signal');
  assert.ok(isIdempotencyError(signal.reason, ErrorCode.LEASE_LOST), 'the abort reason is the LEASE_LOST error');
  assert.equal(first.lease.signal.aborted, true);

  assert.equal(await second.lease.complete({ kind: OutcomeKind.value, payload: new Uint8Array([2]) }), true);
  const replay = await engine.begin({ key: 'k', fingerprint: 'fp' });
  assert.equal(replay.kind, 'replay');
  assert.deepEqual([...replay.outcome.payload], [2]);
}
