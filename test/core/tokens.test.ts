import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newToken } from '../../src/core/tokens.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('newToken', () => {
  it('gives random version 4 UUIDs, none repeated across many refills of its pool', () => {
    const tokens = Array.from({ length: 5000 }, newToken);
    for (const token of tokens) assert.match(token, UUID_V4);
    assert.equal(new Set(tokens).size, tokens.length);
  });

  it('spreads every hex digit over every free position (no stuck byte from the pool)', () => {
    const seen = Array.from({ length: 36 }, () => new Set<string>());
    for (let i = 0; i < 2000; i++) {
      for (const [at, char] of [...newToken()].entries()) seen[at]?.add(char);
    }
    seen.forEach((chars, at) => {
      if ([8, 13, 18, 23].includes(at)) assert.deepEqual([...chars], ['-']);
      else if (at === 14) assert.deepEqual([...chars], ['4']);
      else if (at === 19) assert.equal(chars.size, 4, 'the variant digit is 8, 9, a or b');
      else assert.equal(chars.size, 16, `position ${at} takes all 16 digits`);
    });
  });
});
