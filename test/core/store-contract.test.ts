import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_MAX_RESULT_BYTES, Engine } from '../../src/core/engine.js';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import { OutcomeKind } from '../../src/core/outcome.js';
import { type CompleteInput, isAdminStore, type Store } from '../../src/core/store.js';
import { MemoryStore } from '../../src/stores/memory/index.js';

/** The engine's side of the store contract: a store's declared capacity, and the text it is sent. */

function hasCode(code: ErrorCode, text?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(isIdempotencyError(error, code), `expected ${code}, got ${String(error)}`);
    if (text !== undefined) assert.match(error.message, text);
    return true;
  };
}

/** A MemoryStore that declares `maxResultBytes` and records the largest result it was sent. */
function cappedStore(maxResultBytes: number): { store: Store; largestSent: () => number } {
  const memory = new MemoryStore();
  let largest = 0;
  const store = Object.assign(memory, {
    maxResultBytes,
    complete: (input: CompleteInput) => {
      largest = Math.max(largest, input.result.length);
      return MemoryStore.prototype.complete.call(memory, input);
    },
  });
  return { store, largestSent: () => largest };
}

describe("the engine and a store's maxResultBytes", () => {
  it("lowers its limit to the store's, and keeps its own when that is smaller", () => {
    assert.equal(new Engine({ store: new MemoryStore() }).maxResultBytes, DEFAULT_MAX_RESULT_BYTES);
    assert.equal(new Engine({ store: cappedStore(400_000).store }).maxResultBytes, 400_000);
    assert.equal(new Engine({ store: cappedStore(400_000).store, maxResultBytes: 5000 }).maxResultBytes, 5000);
    assert.equal(new Engine({ store: cappedStore(400_000).store, maxResultBytes: 8_000_000 }).maxResultBytes, 400_000);
  });

  it('stores an outcome of exactly the capacity whole, and records one byte more as too large', async () => {
    const capacity = 2000;
    const { store, largestSent } = cappedStore(capacity);
    const engine = new Engine({ store, heartbeatMs: 0 });
    const overhead = engine.codec.encode({ kind: OutcomeKind.value, payload: new Uint8Array(0) }, 'k').length;

    const fits = await engine.begin({ key: 'fits', fingerprint: 'fp' });
    assert.equal(fits.kind, 'run');
    assert.equal(fits.lease.maxResultBytes, capacity);
    const whole = new Uint8Array(capacity - overhead).fill(7);
    assert.equal(await fits.lease.complete({ kind: OutcomeKind.value, payload: whole }), true);
    const replay = await engine.begin({ key: 'fits', fingerprint: 'fp' });
    assert.equal(replay.kind, 'replay');
    assert.equal(replay.outcome.kind, OutcomeKind.value);
    assert.ok(Buffer.from(replay.outcome.payload).equals(whole), 'the whole outcome comes back');

    const over = await engine.begin({ key: 'over', fingerprint: 'fp' });
    assert.equal(over.kind, 'run');
    const tooBig = new Uint8Array(capacity - overhead + 1);
    assert.equal(await over.lease.complete({ kind: OutcomeKind.value, payload: tooBig }), false);
    const marked = await engine.begin({ key: 'over', fingerprint: 'fp' });
    assert.equal(marked.kind, 'replay');
    assert.equal(marked.outcome.kind, OutcomeKind.tooLarge);
    assert.equal(new TextDecoder().decode(marked.outcome.payload), String(tooBig.length));
    assert.equal(largestSent(), capacity, 'the store was never sent more than it declared');
  });

  it('refuses a store whose declared capacity is not a positive whole number of bytes', () => {
    for (const declared of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '1000' as unknown as number]) {
      assert.throws(
        () => new Engine({ store: cappedStore(declared).store }),
        hasCode(ErrorCode.INVALID_OPTIONS, /memory store declares maxResultBytes/),
        String(declared),
      );
    }
  });
});

describe('the engine and the text it sends a store', () => {
  const engine = new Engine({ store: new MemoryStore(), heartbeatMs: 0 });
  const key255 = `${'é'.repeat(120)}🔑${'k'.repeat(11)}`; // 240 + 4 + 11 bytes

  it('accepts keys and fingerprints of 1 to 255 UTF-8 bytes, whatever their characters', async () => {
    assert.equal(Buffer.byteLength(key255), 255);
    assert.equal((await engine.begin({ key: key255, fingerprint: key255 })).kind, 'run');
    assert.equal((await engine.begin({ key: 'k', fingerprint: 'f' })).kind, 'run');
    assert.equal((await engine.begin({ key: 'x'.repeat(255), fingerprint: '{f}' })).kind, 'run');
  });

  it('refuses a key over 255 bytes, empty, with NUL or a lone surrogate, with KEY_INVALID', async () => {
    for (const key of [`${key255}k`, 'x'.repeat(256), '', 'a\u0000b', 'a\ud800b', 42 as unknown as string]) {
      await assert.rejects(engine.begin({ key, fingerprint: 'fp' }), hasCode(ErrorCode.KEY_INVALID, /storeKeyOf/));
    }
  });

  it('refuses such a fingerprint with INVALID_OPTIONS', async () => {
    for (const fingerprint of [`${key255}f`, '', 'a\u0000b', '\udc00']) {
      await assert.rejects(
        engine.begin({ key: 'k2', fingerprint }),
        hasCode(ErrorCode.INVALID_OPTIONS, /fingerprintOf/),
      );
    }
  });
});

describe('isAdminStore', () => {
  it('tells a store with list and delete from one with the hot path only', () => {
    const memory = new MemoryStore();
    assert.equal(isAdminStore(memory), true);
    const hotPath: Store = {
      name: 'hot',
      claim: memory.claim.bind(memory),
      complete: memory.complete.bind(memory),
      release: memory.release.bind(memory),
      extend: memory.extend.bind(memory),
      get: memory.get.bind(memory),
      close: memory.close.bind(memory),
    };
    assert.equal(isAdminStore(hotPath), false);
    assert.equal(isAdminStore({ ...hotPath, list: memory.list.bind(memory) } as Store), false);
  });
});
