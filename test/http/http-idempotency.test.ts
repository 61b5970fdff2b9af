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

describe('HttpIdempotency: which responses are stored', () => {
  /** Runs one request that answers `status`, then asks again: true when the second is a replay. */
  async function replays(status: number, policy?: HttpIdempotencyOptions['policy']): Promise<boolean> {
    const store = new MemoryStore();
    const http = new HttpIdempotency({ store, ...(policy === undefined ? {} : { policy }) });
    try {
      const first = await http.begin(charge('k1'));
      assert.ok(first.action === 'run');
      first.recording.head(status, [['content-type', 'application/json']]);
      first.recording.write('{}');
      await first.recording.finish();
      const again = await http.begin(charge('k1'));
      if (again.action === 'run') await again.recording.abort();
      return again.action === 'respond' && header(again.response, 'idempotent-replayed') === 'true';
    } finally {
      await store.close();
    }
  }

  it('does not store refusals by default (400, 401, 403, 404, 408, 409, 422, 429) nor 5xx', async () => {
    for (const status of [400, 401, 403, 404, 408, 409, 422, 429, 500, 503]) {
      assert.equal(await replays(status), false, `status ${status}`);
    }
    for (const status of [200, 201, 202, 204, 302, 402, 410, 412]) {
      assert.equal(await replays(status), true, `status ${status}`);
    }
  });

  it('stores every response the handler sent with the stripe preset, and asks a function otherwise', async () => {
    for (const status of [201, 400, 422, 500]) assert.equal(await replays(status, 'stripe'), true, `status ${status}`);
    const onlyCreated = (status: number) => status === 201;
    assert.equal(await replays(201, onlyCreated), true);
    assert.equal(await replays(200, onlyCreated), false);
  });

  it('refuses an unknown policy name', () => {
    assert.throws(
      () => new HttpIdempotency({ store: new MemoryStore(), policy: 'all' as 'stripe' }),
      (error) => isIdempotencyError(error, 'INVALID_OPTIONS') && /policy/.test(error.message),
    );
  });
});

describe('HttpIdempotency: identify, then decide', () => {
  it('identifies a request without the store, and begin is identify then decide', async () => {
    const store = new MemoryStore();
    const http = new HttpIdempotency({ store });
    try {
      const identified = http.identify(charge('k1'));
      assert.ok(identified.action === 'identified');
      assert.deepEqual(http.identify(charge('k1')), identified, 'the same request, the same identity');
      assert.notEqual(
        (http.identify(charge('k1', { amount: 1 })) as typeof identified).identity.fingerprint,
        identified.identity.fingerprint,
      );
      assert.equal(await store.get(identified.identity.storeKey), null, 'identify asks nothing of the store');
      const first = await http.decide(identified.identity);
      assert.ok(first.action === 'run');
      first.recording.head(201, [['content-type', 'application/json']]);
      first.recording.write('{"id":1}');
      await first.recording.finish();
      const again = answer(await http.begin(charge('k1')));
      assert.equal(Buffer.from(again.body).toString(), '{"id":1}');
      assert.equal(http.identify({ ...charge('k1'), header: () => undefined }).action, 'pass');
      assert.equal(answer(await http.begin({ ...charge('k1'), header: () => '' })).status, 400);
    } finally {
      await store.close();
    }
  });
});

describe('ResponseRecording: notStored', () => {
  it('completes the key so that a retry gets 410 saying the response broke off, not that it was too large', async () => {
    const store = new MemoryStore();
    const http = new HttpIdempotency({ store });
    try {
      const first = await http.begin(charge('k1'));
      assert.ok(first.action === 'run');
      first.recording.head(201, [['content-type', 'application/json']]);
      first.recording.write('{"id"');
      await first.recording.notStored('the upstream connection broke');
      const retry = answer(await http.begin(charge('k1')));
      assert.equal(retry.status, 410);
      const detail = (JSON.parse(Buffer.from(retry.body).toString()) as { detail: string }).detail;
      assert.match(detail, /broke off.*the upstream connection broke/);
      assert.doesNotMatch(detail, /bytes|storable limit/);
    } finally {
      await store.close();
    }
  });

  it('releases the key for a status the policy does not store', async () => {
    const store = new MemoryStore();
    const http = new HttpIdempotency({ store });
    try {
      const first = await http.begin(charge('k1'));
      assert.ok(first.action === 'run');
      first.recording.head(502, []);
      await first.recording.notStored('the upstream connection broke');
      const retry = await http.begin(charge('k1'));
      assert.equal(retry.action, 'run', 'a retry runs again');
      if (retry.action === 'run') await retry.recording.abort();
    } finally {
      await store.close();
    }
  });
});

describe('HttpIdempotency: onInProgress', () => {
  const now = () => 1_000_000;

  it("answers 409 at once with 'throw', the function wrapper's word, and with the deprecated 'reject'", async () => {
    assert.equal((await inProgressAnswer({ onInProgress: 'throw', now })).status, 409);
    assert.equal((await inProgressAnswer({ onInProgress: 'reject', now })).status, 409);
  });

  it('refuses an unknown onInProgress value, naming the choices', () => {
    assert.throws(
      () => new HttpIdempotency({ store: new MemoryStore(), onInProgress: 'queue' as 'wait' }),
      (error) => isIdempotencyError(error, 'INVALID_OPTIONS') && /'throw'.*'wait'/.test(error.message),
    );
  });
});
