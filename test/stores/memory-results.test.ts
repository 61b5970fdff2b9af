// The memory store keeps a result as its own copy (packed one character per byte) and hands each
// caller bytes of its own: every byte value survives, and no caller's buffer is the kept one.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore } from '../../src/stores/memory/index.js';

const T = 1_700_000_000_000;

async function completed(store: MemoryStore, key: string, result: Uint8Array): Promise<void> {
  const claim = await store.claim({
    key,
    fingerprint: 'f',
    token: 't',
    nowMs: T,
    leaseExpiresAtMs: T + 1000,
    expiresAtMs: T + 60_000,
  });
  assert.equal(claim.claimed, true);
  assert.equal(await store.complete({ key, token: 't', result, nowMs: T, expiresAtMs: T + 60_000 }), true);
}

describe('MemoryStore results', () => {
  it('gives back every byte value as it was stored, through get, getMany, claim and list', async () => {
    const store = new MemoryStore();
    const every = Uint8Array.from({ length: 256 }, (_, i) => i);
    await completed(store, 'k', every);
    assert.deepEqual((await store.get('k'))?.result, Buffer.from(every));
    assert.deepEqual((await store.getMany(['k']))[0]?.result, Buffer.from(every));
    const again = await store.claim({
      key: 'k',
      fingerprint: 'f',
      token: 'u',
      nowMs: T,
      leaseExpiresAtMs: T + 1,
      expiresAtMs: T + 2,
    });
    assert.equal(again.claimed, false);
    assert.deepEqual(again.record.result, Buffer.from(every));
    assert.deepEqual((await store.list()).records[0]?.result, Buffer.from(every));
    assert.equal(store.bytes > 256, true, 'the result counts against maxBytes');
  });

  it('is changed by nothing a caller does to the buffer it gave or was given', async () => {
    const store = new MemoryStore();
    const given = Uint8Array.of(1, 2, 3);
    await completed(store, 'k', given);
    given.fill(9);
    const first = await store.get('k');
    assert.deepEqual(first?.result, Buffer.of(1, 2, 3));
    first?.result?.fill(7);
    assert.deepEqual((await store.get('k'))?.result, Buffer.of(1, 2, 3));
  });
});
