// The bytes the engine keeps in `record.result` (src/core/outcome.ts): one format byte, then the
// plain outcome (kind, payload) or the outcome sealed for its record with an encryption key.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import { isSealed, type Outcome, OutcomeCodec, OutcomeKind } from '../../src/core/outcome.js';

const unreadable = (pattern: RegExp) => (error: unknown) => {
  assert.ok(isIdempotencyError(error, ErrorCode.RESULT_UNREADABLE), `expected RESULT_UNREADABLE, got ${String(error)}`);
  assert.match(error.message, pattern);
  assert.match(error.message, /idem keys delete/, 'the message says how to let the operation run again');
  return true;
};

const everyByte = Uint8Array.from({ length: 256 }, (_, i) => i);
const outcomes: [string, Outcome][] = [
  ['a value', { kind: OutcomeKind.value, payload: new TextEncoder().encode('{"id":"ch_1"}') }],
  ['an error', { kind: OutcomeKind.error, payload: new TextEncoder().encode('{"name":"CardDeclined"}') }],
  ['a too-large marker', { kind: OutcomeKind.tooLarge, payload: new TextEncoder().encode('2097152') }],
  ['an empty value', { kind: OutcomeKind.value, payload: new Uint8Array(0) }],
  ['every byte value', { kind: OutcomeKind.value, payload: everyByte }],
];

function assertSame(actual: Outcome, expected: Outcome, label: string): void {
  assert.equal(actual.kind, expected.kind, `${label}: kind`);
  assert.deepEqual([...actual.payload], [...expected.payload], `${label}: payload`);
}

describe('outcome codec: plain', () => {
  const codec = new OutcomeCodec();

  it('writes the format byte, the kind byte, then the payload as it is', () => {
    const bytes = codec.encode({ kind: OutcomeKind.tooLarge, payload: Uint8Array.of(7, 8) }, 'k');
    assert.deepEqual([...bytes], [1, OutcomeKind.tooLarge, 7, 8]);
    assert.equal(isSealed(bytes), false);
  });

  for (const [label, outcome] of outcomes) {
    it(`round-trips ${label}`, () => {
      assertSame(codec.decode(codec.encode(outcome, 'k'), 'k'), outcome, label);
    });
  }

  it('reads bytes that sit inside a larger buffer (as drivers return them)', () => {
    const encoded = codec.encode(outcomes[0]?.[1] as Outcome, 'k');
    const pool = new Uint8Array(encoded.length + 20);
    pool.set(encoded, 10);
    assertSame(codec.decode(pool.subarray(10, 10 + encoded.length), 'k'), outcomes[0]?.[1] as Outcome, 'offset');
  });

  it('refuses an unknown format byte, or no bytes at all, with RESULT_UNREADABLE', () => {
    for (const format of [0, 4, 9, 255]) {
      assert.throws(() => codec.decode(Uint8Array.of(format, 0, 1, 2), 'k'), unreadable(/format byte is unknown/));
    }
    assert.throws(() => codec.decode(new Uint8Array(0), 'k'), unreadable(/format byte is unknown/));
    assert.throws(() => codec.decode(Uint8Array.of(1), 'k'), unreadable(/format byte is unknown/), 'no kind byte');
  });

  it('refuses an unknown kind byte, naming it', () => {
    assert.throws(() => codec.decode(Uint8Array.of(1, 9, 65), 'k'), unreadable(/kind byte 9 is unknown/));
  });
});

describe('outcome codec: sealed', () => {
  const sealing = new OutcomeCodec('a long random secret for the outcome tests');

  for (const [label, outcome] of outcomes) {
    it(`round-trips ${label} in the record it was sealed for`, () => {
      const bytes = sealing.encode(outcome, 'record-1');
      assert.equal(isSealed(bytes), true);
      assertSame(sealing.decode(bytes, 'record-1'), outcome, label);
    });
  }

  it('hides the payload and kind, and seals the same outcome differently each time', () => {
    const secret = new TextEncoder().encode('card 4242 4242 4242 4242');
    const one = Buffer.from(sealing.encode({ kind: OutcomeKind.value, payload: secret }, 'r'));
    const two = Buffer.from(sealing.encode({ kind: OutcomeKind.value, payload: secret }, 'r'));
    assert.equal(one[0], 3, 'the sealed format byte');
    assert.equal(one.indexOf(Buffer.from('4242')), -1, 'no plain payload in the sealed bytes');
    assert.equal(one.length, 1 + 4 + 12 + 16 + 1 + secret.length, 'format, key id, IV, tag, then kind and payload');
    assert.notDeepEqual(one, two, 'a fresh IV every time');
  });

  it('opens only in the record it was sealed for', () => {
    const bytes = sealing.encode(outcomes[0]?.[1] as Outcome, 'record-1');
    assert.throws(() => sealing.decode(bytes, 'record-2'), unreadable(/sealed for another record/));
  });

  it('is unreadable without a key, or with another key', () => {
    const bytes = sealing.encode(outcomes[0]?.[1] as Outcome, 'r');
    assert.throws(() => new OutcomeCodec().decode(bytes, 'r'), unreadable(/no encryptionKey is configured/));
    assert.throws(
      () => new OutcomeCodec('another secret').decode(bytes, 'r'),
      unreadable(/key that is not configured/),
    );
  });

  it('refuses a sealed result cut short, or with its format byte changed', () => {
    const bytes = sealing.encode(outcomes[0]?.[1] as Outcome, 'r');
    assert.throws(() => sealing.decode(bytes.subarray(0, 33), 'r'), unreadable(/sealed but cut short/));
    const earlier = Uint8Array.from(bytes);
    earlier[0] = 2; // the format of sealed results from before they were bound to their record
    assert.throws(() => sealing.decode(earlier, 'r'), unreadable(/earlier version of Idem/));
  });

  it('writes plain results when no key is given, and the plain form is not mistaken for sealed', () => {
    const plain = new OutcomeCodec().encode(outcomes[0]?.[1] as Outcome, 'r');
    assert.equal(isSealed(plain), false);
    assert.equal(isSealed(sealing.encode(outcomes[0]?.[1] as Outcome, 'r')), true);
  });

  it('refuses a result stored in the clear while a key is configured, so nobody can plant one', () => {
    const planted = new OutcomeCodec().encode(outcomes[0]?.[1] as Outcome, 'r');
    assert.throws(() => sealing.decode(planted, 'r'), unreadable(/in the clear while an encryptionKey is configured/));
  });
});
