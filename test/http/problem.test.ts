// The one table from error code to HTTP answer (src/http/problem.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, IdempotencyError } from '../../src/core/errors.js';
import { Problems, problemResponse } from '../../src/http/problem.js';

function answer(error: IdempotencyError) {
  const response = problemResponse(error);
  const body = JSON.parse(new TextDecoder().decode(response.body)) as Record<string, unknown>;
  return { response, body, header: (name: string) => response.headers.find(([n]) => n === name)?.[1] };
}

describe('problem table', () => {
  it('answers every error code with problem+json carrying its status, stable type and code', () => {
    for (const code of Object.values(ErrorCode)) {
      const { response, body, header } = answer(new IdempotencyError(code, `[idem] something about ${code}`));
      assert.equal(response.status, Problems[code].status, code);
      assert.equal(header('content-type'), 'application/problem+json');
      assert.match(String(body.type), /^urn:idem:problem:[a-z-]+$/, code);
      assert.equal(body.code, code);
      assert.equal(body.status, response.status);
    }
  });

  it('gives the error message as detail for refusals the client can act on', () => {
    const { body } = answer(
      new IdempotencyError(ErrorCode.KEY_INVALID, '[idem] invalid Idempotency-Key: the key is empty.'),
    );
    assert.equal(body.detail, 'invalid Idempotency-Key: the key is empty.');
  });

  it('never sends a driver error, a database name or a user to clients in a 503 or 500', () => {
    const secret = 'password authentication failed for user "billing" on database "prod_payments" at 10.0.0.7';
    for (const code of [
      ErrorCode.STORE_UNAVAILABLE,
      ErrorCode.STORE_MISCONFIGURED,
      ErrorCode.STORE_CLOSED,
      ErrorCode.RESULT_UNREADABLE,
      ErrorCode.INVALID_OPTIONS,
    ]) {
      const { response, body } = answer(new IdempotencyError(code, `[idem] [postgres] claim failed: ${secret}.`));
      assert.ok(response.status >= 500, code);
      assert.doesNotMatch(JSON.stringify(body), /billing|prod_payments|10\.0\.0\.7|postgres/, code);
      assert.ok(String(body.detail).length > 0, code);
    }
  });

  it('says when to retry: Retry-After from the error, 1 s for a 503 without one, at least 1 s', () => {
    assert.equal(
      answer(new IdempotencyError(ErrorCode.IN_PROGRESS, 'busy', { retryAfterMs: 2500 })).header('retry-after'),
      '3',
    );
    assert.equal(
      answer(new IdempotencyError(ErrorCode.IN_PROGRESS, 'busy', { retryAfterMs: 10 })).header('retry-after'),
      '1',
    );
    assert.equal(answer(new IdempotencyError(ErrorCode.STORE_UNAVAILABLE, 'down')).header('retry-after'), '1');
    assert.equal(
      answer(new IdempotencyError(ErrorCode.FINGERPRINT_MISMATCH, 'reused')).header('retry-after'),
      undefined,
    );
  });
});
