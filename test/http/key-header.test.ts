import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isIdempotencyError } from '../../src/core/errors.js';
import { parseIdempotencyKey } from '../../src/http/index.js';

const refused = (header: string | string[]) =>
  assert.throws(
    () => parseIdempotencyKey(header),
    (error) => isIdempotencyError(error, 'KEY_INVALID'),
    `${JSON.stringify(header)} was accepted`,
  );

describe('parseIdempotencyKey', () => {
  it('ignores spaces and tabs around the value, bare or quoted', () => {
    assert.equal(parseIdempotencyKey(' \tabc\t '), 'abc');
    assert.equal(parseIdempotencyKey('\t"a b" '), 'a b');
  });

  it('refuses a key with U+00A0 (a 0xA0 byte) around it instead of taking it for the plain key', () => {
    for (const header of ['abc\u00a0', '\u00a0abc', '"abc"\u00a0', '\u00a0"abc"', '\u00a0', 'abc\u2003', '\ufeffabc']) {
      refused(header);
    }
  });

  it('refuses a blank value with 400 key-invalid', () => {
    for (const header of ['', ' ', '\t \t']) refused(header);
  });
});
