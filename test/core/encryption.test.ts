import assert from 'node:assert/strict';
import { createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Engine } from '../../src/core/engine.js';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import { type Outcome, OutcomeCodec, OutcomeKind } from '../../src/core/outcome.js';
import { MemoryStore } from '../../src/stores/memory/index.js';

const withCode = (code: ErrorCode, pattern?: RegExp) => (error: unknown) => {
  assert.ok(isIdempotencyError(error, code), `expected ${code}, got ${String(error)}`);
  if (pattern) assert.match(error.message, pattern);
  return true;
};

const charge: Outcome = { kind: OutcomeKind.value, payload: new TextEncoder().encode('{"charge":"ch_1"}') };

function text(outcome: Outcome): string {
  return new TextDecoder().decode(outcome.payload);
}

describe('sealed results', () => {
  it('refuses a sealed result copied into another record of the store', async () => {
    const store = new MemoryStore();
    const engine = new Engine({ store, encryptionKey: 'a long random secret for the tests' });
    const complete = async (key: string, body: string) => {
      const decision = await engine.begin({ key, fingerprint: 'fp' });
      assert.equal(decision.kind, 'run');
      await decision.lease.complete({ kind: OutcomeKind.value, payload: new TextEncoder().encode(body) });
    };
    await complete('refund-for-mallory', '{"refund":10000}');
    await complete('refund-for-alice', '{"refund":5}');

    // Someone who can write to the store moves Mallory's sealed result into Alice's record.
    const stolen = (await store.get('refund-for-mallory'))?.result;
    assert.ok(stolen);
    await store.delete('refund-for-alice');
    await store.claim({
      key: 'refund-for-alice',
      fingerprint: 'fp',
      token: 't',
      nowMs: Date.now(),
      leaseExpiresAtMs: Date.now() + 1000,
      expiresAtMs: Date.now() + 60_000,
    });
    await store.complete({
      key: 'refund-for-alice',
      token: 't',
      result: stolen,
      nowMs: Date.now(),
      expiresAtMs: Date.now() + 60_000,
    });

    await assert.rejects(
      engine.begin({ key: 'refund-for-alice', fingerprint: 'fp' }),
      withCode(ErrorCode.RESULT_UNREADABLE, /sealed for another record .*or its bytes were altered/),
    );
    const mallory = await engine.begin({ key: 'refund-for-mallory', fingerprint: 'fp' });
    assert.equal(mallory.kind === 'replay' && text(mallory.outcome), '{"refund":10000}');
  });

  it('refuses a sealed result whose ciphertext was altered', () => {
    const codec = new OutcomeCodec(randomBytes(32));
    const sealed = Buffer.from(codec.encode(charge, 'k'));
    assert.deepEqual(codec.decode(sealed, 'k'), { kind: charge.kind, payload: Buffer.from(charge.payload) });
    sealed[sealed.length - 1] = (sealed[sealed.length - 1] ?? 0) ^ 1;
    assert.throws(() => codec.decode(sealed, 'k'), withCode(ErrorCode.RESULT_UNREADABLE, /altered/));
  });

  it('opens results sealed under an old key after a new current key is put first', () => {
    const oldKey = 'the secret of last year, long and random';
    const newKey = randomBytes(32);
    const before = new OutcomeCodec(oldKey);
    const sealedBefore = before.encode(charge, 'order-1');

    const rotated = new OutcomeCodec([newKey, oldKey]);
    assert.equal(text(rotated.decode(sealedBefore, 'order-1')), text(charge));
    const sealedAfter = rotated.encode(charge, 'order-2');
    assert.equal(text(new OutcomeCodec(newKey).decode(sealedAfter, 'order-2')), text(charge), 'the new key seals');
    assert.throws(
      () => before.decode(sealedAfter, 'order-2'),
      withCode(ErrorCode.RESULT_UNREADABLE, /sealed with a key that is not configured \(key id [0-9a-f]{8}\)/),
    );
    // Once the old key is dropped, what it sealed says which key is missing.
    assert.throws(
      () => new OutcomeCodec(newKey).decode(sealedBefore, 'order-1'),
      withCode(ErrorCode.RESULT_UNREADABLE, /add that key to encryptionKey/),
    );
  });

  it('derives the key of a string secret with HKDF-SHA-256 and uses 32 bytes as they are', () => {
    const secret = 'correct horse battery staple, but longer and random';
    const derived = new Uint8Array(hkdfSync('sha256', secret, new Uint8Array(0), 'idem/result-encryption/v1', 32));
    const fromSecret = new OutcomeCodec(secret);
    const fromBytes = new OutcomeCodec(derived);
    assert.equal(text(fromBytes.decode(fromSecret.encode(charge, 'k'), 'k')), text(charge));
    assert.equal(text(fromSecret.decode(fromBytes.encode(charge, 'k'), 'k')), text(charge));

    // The documented layout: format 3 | key id (4) | iv (12) | tag (16) | ciphertext of kind + payload,
    // with format byte, key id and record key as associated data.
    const sealed = Buffer.from(fromBytes.encode(charge, 'order-9'));
    assert.equal(sealed[0], 3);
    const keyId = createHmac('sha256', derived).update('idem/key-id/v1').digest().subarray(0, 4);
    assert.deepEqual(sealed.subarray(1, 5), keyId);
    const decipher = createDecipheriv('aes-256-gcm', derived, sealed.subarray(5, 17));
    decipher.setAAD(Buffer.concat([sealed.subarray(0, 5), Buffer.from('order-9')]));
    decipher.setAuthTag(sealed.subarray(17, 33));
    const plain = Buffer.concat([decipher.update(sealed.subarray(33)), decipher.final()]);
    assert.equal(plain[0], OutcomeKind.value);
    assert.equal(plain.subarray(1).toString(), text(charge));
  });

  it('says why a sealed result cannot be read without a key, or from an earlier format', () => {
    const sealed = new OutcomeCodec('secret').encode(charge, 'k');
    assert.throws(
      () => new OutcomeCodec().decode(sealed, 'k'),
      withCode(ErrorCode.RESULT_UNREADABLE, /no encryptionKey is configured/),
    );
    const earlier = Buffer.concat([Buffer.from([2]), randomBytes(40)]);
    assert.throws(
      () => new OutcomeCodec('secret').decode(earlier, 'k'),
      withCode(ErrorCode.RESULT_UNREADABLE, /earlier version of Idem/),
    );
  });

  it('refuses an empty key list, a key of the wrong size and a key of the wrong type', () => {
    assert.throws(() => new OutcomeCodec([]), withCode(ErrorCode.INVALID_OPTIONS, /empty list/));
    assert.throws(() => new OutcomeCodec(''), withCode(ErrorCode.INVALID_OPTIONS, /encryptionKey is empty/));
    assert.throws(
      () => new OutcomeCodec(['secret', new Uint8Array(16)]),
      withCode(ErrorCode.INVALID_OPTIONS, /encryptionKey\[1\] has 16 bytes; AES-256 needs exactly 32/),
    );
    assert.throws(
      () => new OutcomeCodec(42 as never),
      withCode(ErrorCode.INVALID_OPTIONS, /a string secret or 32 bytes/),
    );
  });
});
