import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultSerializer } from '../../src/core/value-codec.js';

const roundTrip = (value: unknown) => defaultSerializer.decode(defaultSerializer.encode(value));
const tagOf = (value: unknown) => String.fromCharCode(defaultSerializer.encode(value)[0] ?? 0);

describe('the default value serializer', () => {
  it('stores plain JSON data as JSON and gets it back equal', () => {
    const value = { id: 'ch_1', amount: 500, tags: ['a', 'b'], nested: { ok: true, none: null } };
    assert.equal(tagOf(value), 'J');
    assert.deepEqual(roundTrip(value), value);
    assert.equal(tagOf('text'), 'J');
    assert.equal(roundTrip(0), 0);
  });

  it('falls back to a structured clone for what JSON would change, and gets it back exactly', () => {
    const cases: unknown[] = [
      { at: new Date(1000) },
      new Map([['a', 1]]),
      new Set([1]),
      { bytes: new Uint8Array([1, 2, 3]) },
      { big: 10n },
      { gone: undefined },
      // biome-ignore lint/suspicious/noSparseArray: a hole is what JSON would turn into null
      [1, , 3],
      -0,
      Number.NaN,
      Number.POSITIVE_INFINITY,
    ];
    for (const value of cases) {
      assert.equal(tagOf(value), 'V', `tag of ${String(value)}`);
      assert.deepEqual(roundTrip(value), value);
    }
    assert.ok(Object.is(roundTrip(-0), -0));
  });

  it('gives back undefined for a function that returned nothing', () => {
    assert.equal(roundTrip(undefined), undefined);
    assert.equal(tagOf(undefined), 'U');
  });

  it('gives back class instances as plain objects with their fields', () => {
    class Receipt {
      constructor(readonly id: string) {}
    }
    const back = roundTrip(new Receipt('r1')) as Record<string, unknown>;
    assert.deepEqual({ ...back }, { id: 'r1' });
  });
});
