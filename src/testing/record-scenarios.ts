/**
 * Conformance scenarios about what a record holds and for how long: retention, result bytes up
 * to the store's capacity, and keys, fingerprints and tokens at the longest the contract allows.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DEFAULT_MAX_RESULT_BYTES } from '../core/engine.js';
import { isAdminStore, StoreLimits } from '../core/store.js';
import { claimInput, HOUR_MS, padToBytes, type ScenarioContext } from './conformance-inputs.js';

/** An expired record is hidden from `get(key, nowMs)` and replaced by a fresh claim, whatever its fingerprint. */
export async function retentionExpiry({ store }: ScenarioContext): Promise<void> {
  const t = Date.now();
  const expiresAtMs = t + 60_000;
  await store.claim(claimInput('k', { nowMs: t, token: 'a' }));
  await store.complete({ key: 'k', token: 'a', result: new Uint8Array([1]), nowMs: t, expiresAtMs });
  assert.equal((await store.get('k', expiresAtMs - 1))?.state, 'completed');
  assert.equal(await store.get('k', expiresAtMs), null);
  const fresh = await store.claim(claimInput('k', { nowMs: expiresAtMs, token: 'b', fingerprint: 'other' }));
  assert.equal(fresh.claimed, true);
  assert.equal(fresh.claimed && fresh.takeover, false);
  assert.equal(fresh.record.attempts, 1);
  assert.equal(fresh.record.createdAtMs, expiresAtMs);
  assert.equal(fresh.record.fingerprint, 'other');

  // An in-progress record past its retention counts as absent too, lease or not.
  await store.claim(claimInput('held', { nowMs: t, token: 'a', leaseMs: 120_000, expiresAtMs }));
  const after = await store.claim(claimInput('held', { nowMs: expiresAtMs, token: 'b', fingerprint: 'other' }));
  assert.equal(after.claimed, true);
  assert.equal(after.record.attempts, 1);
}

/** Every byte value, and no bytes at all, round-trip exactly. */
export async function binaryResults({ store }: ScenarioContext): Promise<void> {
  const t = Date.now();
  const everyByte = new Uint8Array(512);
  for (let i = 0; i < everyByte.length; i++) everyByte[i] = i % 256;
  for (const [key, result] of [
    ['every-byte', everyByte],
    ['empty', new Uint8Array(0)],
  ] as const) {
    await store.claim(claimInput(key, { nowMs: t, token: 'a' }));
    assert.equal(await store.complete({ key, token: 'a', result, nowMs: t, expiresAtMs: t + HOUR_MS }), true);
    const back = await store.get(key);
    assert.ok(back?.result instanceof Uint8Array, `${key} comes back as bytes`);
    assert.ok(Buffer.from(back.result).equals(Buffer.from(result)), `${key} bytes`);
  }
}

/**
 * A result of exactly the store's capacity round-trips: its declared `maxResultBytes`, or the
 * engine's default limit (1 MiB) when it declares none.
 */
export async function resultCapacity({ store }: ScenarioContext): Promise<void> {
  const t = Date.now();
  const capacity = store.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
  const result = new Uint8Array(randomBytes(capacity));
  await store.claim(claimInput('full', { nowMs: t, token: 'a' }));
  assert.equal(await store.complete({ key: 'full', token: 'a', result, nowMs: t, expiresAtMs: t + HOUR_MS }), true);
  const back = await store.get('full');
  assert.equal(back?.result?.length, capacity, 'the result keeps its length');
  assert.ok(Buffer.from(back.result).equals(Buffer.from(result)), 'the result keeps its bytes');
  const replay = await store.claim(claimInput('full', { nowMs: t + 1, token: 'b' }));
  assert.equal(replay.claimed, false);
  assert.ok(Buffer.from(replay.record.result ?? []).equals(Buffer.from(result)), 'a losing claim returns it whole');
}

/**
 * Keys, fingerprints and tokens of the longest the contract allows (255 UTF-8 bytes), with
 * characters of 1 to 4 bytes and Redis's hash-tag braces, are kept byte for byte, and two keys
 * that differ only in their last byte are two records.
 */
export async function textSizes({ store }: ScenarioContext): Promise<void> {
  const t = Date.now();
  const key = padToBytes('{clé}-ключ-キー-🔑-', StoreLimits.keyBytes);
  const twin = `${key.slice(0, -1)}x`;
  const fingerprint = padToBytes('empreinte-ü-指紋-🧾-', StoreLimits.fingerprintBytes);
  const token = padToBytes('jeton-é-トークン-🎟-', StoreLimits.tokenBytes);
  assert.equal(Buffer.byteLength(twin), StoreLimits.keyBytes);

  const claimed = await store.claim(claimInput(key, { nowMs: t, token, fingerprint, leaseMs: 1000 }));
  assert.equal(claimed.claimed, true);
  assert.deepEqual([claimed.record.key, claimed.record.fingerprint, claimed.record.token], [key, fingerprint, token]);
  const read = await store.get(key);
  assert.deepEqual([read?.key, read?.fingerprint, read?.token], [key, fingerprint, token], 'get returns them exactly');
  assert.equal(await store.get(twin), null, 'a key that differs in its last byte is another record');
  assert.equal((await store.claim(claimInput(twin, { nowMs: t, token: 'other', fingerprint }))).claimed, true);

  // The fingerprint is compared exactly on takeover, the token on extend and complete.
  const otherFingerprint = `${fingerprint.slice(0, -1)}x`;
  const rival = await store.claim(claimInput(key, { nowMs: t + 1000, token: 'rival', fingerprint: otherFingerprint }));
  assert.equal(rival.claimed, false);
  assert.equal(rival.record.token, token);
  const extension = { key, token, nowMs: t + 1, leaseExpiresAtMs: t + 2000, expiresAtMs: t + HOUR_MS };
  assert.equal(await store.extend(extension), true);
  const result = new Uint8Array([1]);
  assert.equal(await store.complete({ key, token, result, nowMs: t + 2, expiresAtMs: t + HOUR_MS }), true);
  if (isAdminStore(store)) {
    const { records } = await store.list({ limit: 10 });
    assert.deepEqual(records.map((record) => record.key).sort(), [key, twin].sort(), 'list returns them exactly');
  }
}
