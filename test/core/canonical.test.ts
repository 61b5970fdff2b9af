import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalize, compareCodePoints, fingerprintOf } from '../../src/core/canonical.js';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';

const refusedWith = (pattern: RegExp) => (error: unknown) => {
  assert.ok(isIdempotencyError(error, ErrorCode.FINGERPRINT_UNSUPPORTED), String(error));
  assert.match(error.message, pattern);
  return true;
};

describe('canonical form', () => {
  it('gives the same text whatever the order of object keys, at every depth', () => {
    const a = { b: 1, a: { d: [1, { y: 2, x: 1 }], c: 'x' } };
    const b = { a: { c: 'x', d: [1, { x: 1, y: 2 }] }, b: 1 };
    assert.equal(canonicalize(a), canonicalize(b));
    assert.equal(canonicalize(a), '{"a":{"c":"x","d":[1,{"x":1,"y":2}]},"b":1}');
  });

  it('sorts keys by code point, not by UTF-16 unit', () => {
    // U+E000 is one unit (0xE000); U+10000 is two units starting 0xD800, so `<` puts it first.
    assert.ok('\u{10000}' < '\uE000');
    assert.ok(compareCodePoints('\uE000', '\u{10000}') < 0);
    assert.equal(canonicalize({ '\u{10000}': 1, '\uE000': 2 }), '{"\uE000":2,"\u{10000}":1}');
    assert.ok(compareCodePoints('ab', 'abc') < 0);
    assert.equal(compareCodePoints('same', 'same'), 0);
  });

  it('writes numbers in one form: -0 as 0, exponents as JavaScript prints them', () => {
    assert.equal(canonicalize([-0, 0, 1e21, 0.1, 1.5e-7]), '[0,0,1e+21,0.1,1.5e-7]');
    assert.equal(fingerprintOf({ n: 1.0 }), fingerprintOf({ n: 1 }));
  });

  it('refuses NaN and the infinities instead of collapsing them to null', () => {
    assert.throws(() => canonicalize({ amount: Number.NaN }), refusedWith(/NaN at \$\.amount/));
    assert.throws(() => canonicalize([Number.POSITIVE_INFINITY]), refusedWith(/Infinity at \$\[0\]/));
  });

  it('tells a Date from the string of its ISO form, and bytes from their base64 text', () => {
    const date = new Date(0);
    assert.notEqual(fingerprintOf(date), fingerprintOf(date.toISOString()));
    assert.notEqual(fingerprintOf(Buffer.from('hi')), fingerprintOf(Buffer.from('hi').toString('base64')));
    assert.equal(fingerprintOf(Buffer.from([1, 2, 3])), fingerprintOf(new Uint8Array([1, 2, 3])));
    assert.notEqual(fingerprintOf(10n), fingerprintOf(10));
  });

  it('leaves out undefined properties as JSON does, and writes undefined array items as null', () => {
    assert.equal(canonicalize({ a: undefined, b: 1 }), '{"b":1}');
    assert.equal(canonicalize([undefined]), '[null]');
  });

  it('refuses class instances, Maps, functions, symbols and cycles, naming the path', () => {
    class Money {
      amount = 1;
    }
    assert.throws(() => canonicalize({ price: new Money() }), refusedWith(/instance of Money at \$\.price/));
    assert.throws(() => canonicalize({ m: new Map() }), refusedWith(/instance of Map/));
    assert.throws(() => canonicalize({ f: () => 1 }), refusedWith(/a function at \$\.f/));
    assert.throws(() => canonicalize([Symbol('s')]), refusedWith(/a symbol/));
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    assert.throws(() => canonicalize(loop), refusedWith(/circular reference at \$\.self/));
    assert.throws(() => canonicalize(new Date(Number.NaN)), refusedWith(/invalid Date/));
  });

  it('names the path of the refused value, through objects and arrays, and only of the refused one', () => {
    const nested = { ok: [1, { fine: 'x' }], a: [0, { b: [true, () => 1] }] };
    assert.throws(() => canonicalize(nested), refusedWith(/cannot fingerprint a function at \$\.a\[1\]\.b\[1\]:/));
    assert.throws(() => canonicalize([{ n: Number.NaN }]), refusedWith(/the number NaN at \$\[0\]\.n:/));
    assert.throws(() => canonicalize(Symbol('s')), refusedWith(/a symbol at \$:/));
  });

  it('refuses nesting deeper than MAX_DEPTH instead of exhausting the stack', () => {
    const deep = JSON.parse(`${'['.repeat(50_000)}${']'.repeat(50_000)}`) as unknown;
    assert.throws(() => canonicalize(deep), refusedWith(/nesting deeper than 1000 levels/));
    const fine = JSON.parse(`${'['.repeat(999)}${']'.repeat(999)}`) as unknown;
    assert.equal(canonicalize(fine).length, 1998);
  });

  it('accepts the same object twice when it is shared, not circular', () => {
    const shared = { x: 1 };
    assert.equal(canonicalize([shared, shared]), '[{"x":1},{"x":1}]');
  });

  it('accepts objects without a prototype', () => {
    const bare = Object.create(null) as Record<string, number>;
    bare.z = 1;
    bare.a = 2;
    assert.equal(canonicalize(bare), '{"a":2,"z":1}');
  });
});
