import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isIdempotencyError } from '../../src/core/errors.js';
import {
  type HttpDecision,
  HttpIdempotency,
  type HttpIdempotencyOptions,
  type HttpRequestInfo,
  type HttpResponseData,
} from '../../src/http/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';

/** A keyed POST from one known caller. */
function charge(key: string, body: unknown = { amount: 500 }): HttpRequestInfo {
  const headers: Record<string, string> = { 'idempotency-key': key, authorization: 'Bearer alice' };
  return { method: 'POST', route: '/charges', body, header: (name) => headers[name] };
}

function answer(decision: HttpDecision): HttpResponseData {
  assert.equal(decision.action, 'respond');
  return (decision as Extract<HttpDecision, { action: 'respond' }>).response;
}

const header = (response: HttpResponseData, name: string) => response.headers.find(([n]) => n === name)?.[1];

/** The 409 a duplicate gets while the first request with its key still runs. */
async function inProgressAnswer(options: Omit<HttpIdempotencyOptions, 'store'>): Promise<HttpResponseData> {
  const store = new MemoryStore();
  const http = new HttpIdempotency({ store, ...options });
  try {
    const first = await http.begin(charge('k1'));
    assert.equal(first.action, 'run');
    const duplicate = answer(await http.begin(charge('k1')));
    if (first.action === 'run') await first.recording.abort();
    return duplicate;
  } finally {
    await store.close();
  }
}

describe('HttpIdempotency: Retry-After of a 409 in progress', () => {
  // A fixed clock: the lease's remaining time is exact.
  const now = () => 1_000_000;

  it('says 1 s by default, not the 30 s left of the lease', async () => {
    const response = await inProgressAnswer({ leaseMs: 30_000, now });
    assert.equal(response.status, 409);
    assert.equal(header(response, 'retry-after'), '1');
    assert.match(Buffer.from(response.body).toString(), /retry after 1 s/);
  });

  it('says retryAfterMs in whole seconds, rounded up', async () => {
    assert.equal(header(await inProgressAnswer({ leaseMs: 30_000, now, retryAfterMs: 5000 }), 'retry-after'), '5');
    assert.equal(header(await inProgressAnswer({ leaseMs: 30_000, now, retryAfterMs: 2500 }), 'retry-after'), '3');
    assert.equal(header(await inProgressAnswer({ leaseMs: 30_000, now, retryAfterMs: 0 }), 'retry-after'), '1');
  });

  it('says when the lease ends, when that is sooner than retryAfterMs', async () => {
    assert.equal(header(await inProgressAnswer({ leaseMs: 2000, now, retryAfterMs: 60_000 }), 'retry-after'), '2');
  });

  it('refuses a retryAfterMs that is not a number of ms', () => {
    for (const retryAfterMs of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => new HttpIdempotency({ store: new MemoryStore(), retryAfterMs }),
        (error) => isIdempotencyError(error, 'INVALID_OPTIONS') && /retryAfterMs/.test(error.message),
      );
    }
  });
});
