import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import { idempotencyContext, idempotent } from '../../src/core/idempotent.js';
import type { Store } from '../../src/core/store.js';
import { MemoryStore } from '../../src/stores/memory/index.js';

const withCode = (code: ErrorCode, pattern?: RegExp) => (error: unknown) => {
  assert.ok(isIdempotencyError(error, code), `expected ${code}, got ${String(error)}`);
  if (pattern) assert.match(error.message, pattern);
  return true;
};

/** A counter of real side effects. */
function charger() {
  const charges: string[] = [];
  const charge = async (req: { id: string; amount: number }) => {
    charges.push(req.id);
    return { chargeId: `ch_${charges.length}`, amount: req.amount, at: new Date(1000) };
  };
  return { charges, charge };
}

describe('idempotent(fn)', () => {
  it('runs the function once for a repeated key and returns the first result to every retry', async () => {
    const { charges, charge } = charger();
    const once = idempotent(charge, { store: new MemoryStore(), key: (req) => req.id });
    const first = await once({ id: 'order-1', amount: 5 });
    const second = await once({ id: 'order-1', amount: 5 });
    assert.deepEqual(charges, ['order-1']);
    assert.deepEqual(second, first);
    assert.ok(second.at instanceof Date, 'a Date comes back as a Date');
    await once({ id: 'order-2', amount: 5 });
    assert.deepEqual(charges, ['order-1', 'order-2']);
  });

  it('uses the arguments as the key when no key function is given', async () => {
    let runs = 0;
    const add = idempotent(async (a: number, b: number) => ++runs + a + b, { store: new MemoryStore(), name: 'add' });
    assert.equal(await add(1, 2), 4);
    assert.equal(await add(1, 2), 4);
    assert.equal(await add(2, 1), 5);
    assert.equal(runs, 2);
  });

  it('releases the key when the function throws, so a retry runs it again', async () => {
    let calls = 0;
    const flaky = idempotent(
      async (_id: string) => {
        calls += 1;
        if (calls === 1) throw new Error('gateway timeout');
        return 'ok';
      },
      { store: new MemoryStore(), name: 'flaky', key: (id) => id },
    );
    await assert.rejects(flaky('k'), /gateway timeout/);
    assert.equal(await flaky('k'), 'ok');
    assert.equal(await flaky('k'), 'ok');
    assert.equal(calls, 2);
  });

  it('stores chosen errors and throws them again to every retry without running', async () => {
    let calls = 0;
    class CardDeclined extends Error {
      override name = 'CardDeclined';
      code = 'card_declined';
    }
    const pay = idempotent(
      async (_id: string) => {
        calls += 1;
        throw new CardDeclined('insufficient funds');
      },
      { store: new MemoryStore(), name: 'pay', key: (id) => id, storeErrors: (e) => e instanceof CardDeclined },
    );
    await assert.rejects(pay('k'), CardDeclined);
    await assert.rejects(pay('k'), (error: Error & { code?: string; idempotentReplay?: boolean }) => {
      assert.equal(error.name, 'CardDeclined');
      assert.equal(error.message, 'insufficient funds');
      assert.equal(error.code, 'card_declined');
      assert.equal(error.idempotentReplay, true);
      return true;
    });
    assert.equal(calls, 1);
  });

  it('answers IN_PROGRESS with the time left on the lease to a concurrent duplicate', async () => {
    const { charges, charge } = charger();
    const slow = idempotent(
      async (req: { id: string; amount: number }) => {
        await sleep(100);
        return charge(req);
      },
      { store: new MemoryStore(), name: 'slow', key: (req) => req.id, leaseMs: 5000 },
    );
    const first = slow({ id: 'k', amount: 1 });
    await sleep(10);
    await assert.rejects(slow({ id: 'k', amount: 1 }), (error: unknown) => {
      assert.ok(isIdempotencyError(error, ErrorCode.IN_PROGRESS));
      assert.ok(error.retryAfterMs !== undefined && error.retryAfterMs > 4000 && error.retryAfterMs <= 5000);
      return true;
    });
    await first;
    assert.equal(charges.length, 1);
  });

  it("waits for the first caller's result with onInProgress: 'wait'", async () => {
    const { charges, charge } = charger();
    const slow = idempotent(
      async (req: { id: string; amount: number }) => {
        await sleep(80);
        return charge(req);
      },
      { store: new MemoryStore(), name: 'slow', key: (req) => req.id, onInProgress: 'wait', waitTimeoutMs: 2000 },
    );
    const results = await Promise.all(Array.from({ length: 20 }, () => slow({ id: 'k', amount: 1 })));
    assert.equal(charges.length, 1);
    for (const result of results) assert.equal(result.chargeId, 'ch_1');
  });

  it('gives up waiting with IN_PROGRESS after waitTimeoutMs', async () => {
    const slow = idempotent(async (_id: string) => sleep(500), {
      store: new MemoryStore(),
      name: 'slow',
      key: (id) => id,
      onInProgress: 'wait',
      waitTimeoutMs: 50,
    });
    const first = slow('k');
    const started = Date.now();
    await assert.rejects(slow('k'), withCode(ErrorCode.IN_PROGRESS));
    assert.ok(Date.now() - started < 400, 'the wait is bounded');
    await first;
  });

  it('refuses the same key with other arguments with FINGERPRINT_MISMATCH, running nothing', async () => {
    const { charges, charge } = charger();
    const once = idempotent(charge, { store: new MemoryStore(), key: (req) => req.id });
    await once({ id: 'k', amount: 5 });
    await assert.rejects(once({ id: 'k', amount: 6 }), withCode(ErrorCode.FINGERPRINT_MISMATCH, /other arguments/));
    assert.equal(charges.length, 1);
  });

  it('keeps scopes apart: two tenants using the same key both run', async () => {
    const { charges, charge } = charger();
    const store = new MemoryStore();
    const once = idempotent(async (_tenant: string, req: { id: string; amount: number }) => charge(req), {
      store,
      name: 'charge',
      key: (_tenant, req) => req.id,
      scope: (tenant) => tenant,
      fingerprint: (_tenant, req) => req,
    });
    const a = await once('tenant-a', { id: 'k', amount: 1 });
    const b = await once('tenant-b', { id: 'k', amount: 1 });
    assert.notEqual(a.chargeId, b.chargeId);
    assert.equal(charges.length, 2);
  });

  it('refuses a call whose scope function answers nothing, rather than sharing one scope', async () => {
    const { charges, charge } = charger();
    const once = idempotent(async (_user: string | undefined, req: { id: string; amount: number }) => charge(req), {
      store: new MemoryStore(),
      name: 'charge',
      key: (_user, req) => req.id,
      scope: (user) => user,
    });
    for (const anonymous of [undefined, '']) {
      await assert.rejects(once(anonymous, { id: 'k', amount: 1 }), withCode(ErrorCode.SCOPE_MISSING, /needs a scope/));
    }
    assert.equal(charges.length, 0, 'an unscoped call must not run');
    await once('alice', { id: 'k', amount: 1 });
    assert.equal(charges.length, 1);
  });

  it('keeps two functions with the same key apart by their names', async () => {
    const store = new MemoryStore();
    const one = idempotent(async (_k: string) => 'one', { store, name: 'one', key: (k) => k });
    const two = idempotent(async (_k: string) => 'two', { store, name: 'two', key: (k) => k });
    assert.equal(await one('k'), 'one');
    assert.equal(await two('k'), 'two');
  });

  it('refuses the late complete of a holder whose lease was taken over, keeping the new result', async () => {
    const store = new MemoryStore();
    let runs = 0;
    const work = idempotent(
      async (_id: string) => {
        runs += 1;
        const mine = runs;
        if (mine === 1) await sleep(200); // stalls past its lease
        return `result-${mine}`;
      },
      { store, name: 'work', key: (id) => id, leaseMs: 50, heartbeatMs: 0 },
    );
    const stalled = work('k');
    await sleep(80);
    assert.equal(await work('k'), 'result-2');
    await assert.rejects(stalled, withCode(ErrorCode.LEASE_LOST, /lease lost .* the result was not stored/));
    assert.equal(await work('k'), 'result-2');
    assert.equal(runs, 2);
  });

  it('extends the lease with a heartbeat while the function runs, so nobody takes over', async () => {
    let runs = 0;
    const work = idempotent(
      async (_id: string) => {
        runs += 1;
        await sleep(300);
        return 'done';
      },
      { store: new MemoryStore(), name: 'work', key: (id) => id, leaseMs: 100, heartbeatMs: 25 },
    );
    const first = work('k');
    await sleep(200);
    await assert.rejects(work('k'), withCode(ErrorCode.IN_PROGRESS));
    assert.equal(await first, 'done');
    assert.equal(runs, 1);
  });

  /** An operator frees the only key in `store` and someone else claims it: its holder must notice. */
  async function takeOver(store: MemoryStore): Promise<void> {
    const key = (await store.list()).records[0]?.key ?? '';
    await store.delete(key);
    await store.claim({
      key,
      fingerprint: 'x',
      token: 'other',
      nowMs: Date.now(),
      leaseExpiresAtMs: Date.now() + 10_000,
      expiresAtMs: Date.now() + 60_000,
    });
  }

  for (const when of ['before', 'after'] as const) {
    it(`aborts the context signal with LEASE_LOST when the heartbeat finds the lease taken over (signal asked for ${when})`, async () => {
      const store = new MemoryStore();
      let signal: AbortSignal | undefined;
      const work = idempotent(
        async (_id: string) => {
          // Asked for after, the signal is made only then and must come already aborted.
          if (when === 'before') signal = idempotencyContext()?.signal;
          await sleep(150);
          if (when === 'after') signal = idempotencyContext()?.signal;
          return 'late';
        },
        { store, name: 'work', key: (id) => id, leaseMs: 100, heartbeatMs: 30 },
      );
      const running = work('k');
      await sleep(10);
      await takeOver(store);
      await assert.rejects(running, withCode(ErrorCode.LEASE_LOST));
      assert.equal(signal?.aborted, true);
      assert.ok(isIdempotencyError(signal?.reason, ErrorCode.LEASE_LOST), String(signal?.reason));
    });
  }

  it('tells the function its key and attempt through idempotencyContext()', async () => {
    const work = idempotent(async (_id: string) => idempotencyContext(), {
      store: new MemoryStore(),
      name: 'w',
      key: (id) => `key-${id}`,
    });
    const ctx = await work('1');
    assert.equal(ctx?.key, 'key-1');
    assert.equal(ctx?.attempts, 1);
    assert.equal(ctx?.storeKey.length, 43);
    assert.equal(idempotencyContext(), undefined);
  });

  it('fails closed with STORE_UNAVAILABLE when the store errors or does not answer in time, and does not run', async () => {
    let runs = 0;
    const broken: Store = Object.assign(new MemoryStore(), {
      name: 'broken',
      claim: async () => {
        throw new Error('ECONNREFUSED 127.0.0.1:5432');
      },
    });
    const hanging: Store = Object.assign(new MemoryStore(), {
      name: 'hanging',
      claim: () => new Promise<never>(() => {}),
    });
    for (const store of [broken, hanging]) {
      const work = idempotent(async (_id: string) => ++runs, { store, name: 'w', key: (id) => id, storeTimeoutMs: 50 });
      await assert.rejects(
        work('k'),
        withCode(ErrorCode.STORE_UNAVAILABLE, new RegExp(`\\[${store.name}\\] claim failed`)),
      );
    }
    assert.equal(runs, 0);
  });

  it('runs once and answers RESULT_TOO_LARGE to retries when the result is over maxResultBytes', async () => {
    let runs = 0;
    const big = idempotent(
      async (_id: string) => {
        runs += 1;
        return 'x'.repeat(5000);
      },
      {
        store: new MemoryStore(),
        name: 'big',
        key: (id) => id,
        maxResultBytes: 1000,
      },
    );
    assert.equal((await big('k')).length, 5000);
    await assert.rejects(big('k'), withCode(ErrorCode.RESULT_TOO_LARGE, /already ran and succeeded/));
    assert.equal(runs, 1);
  });

  it('encrypts stored results, and says so clearly when the key is wrong', async () => {
    const store = new MemoryStore();
    const secret = idempotent(async (_id: string) => 'card 4242-4242', {
      store,
      name: 's',
      key: (id) => id,
      encryptionKey: 'one secret',
    });
    await secret('k');
    const [record] = (await store.list()).records;
    assert.ok(record?.result);
    assert.equal(Buffer.from(record.result).includes('4242'), false, 'the plaintext is not at rest');
    assert.equal(await secret('k'), 'card 4242-4242');
    const wrong = idempotent(async (_id: string) => 'x', {
      store,
      name: 's',
      key: (id) => id,
      encryptionKey: 'another',
    });
    await assert.rejects(wrong('k'), withCode(ErrorCode.RESULT_UNREADABLE, /a key that is not configured/));
  });

  it('refuses missing, non-string and over-long keys before running anything', async () => {
    let runs = 0;
    const work = idempotent(async (_key: unknown) => ++runs, {
      store: new MemoryStore(),
      name: 'w',
      key: (k) => k as string,
    });
    await assert.rejects(work(''), withCode(ErrorCode.KEY_MISSING));
    await assert.rejects(work(undefined), withCode(ErrorCode.KEY_MISSING));
    await assert.rejects(work(42), withCode(ErrorCode.KEY_INVALID, /must be a string/));
    await assert.rejects(work('k'.repeat(256)), withCode(ErrorCode.KEY_INVALID, /256 characters/));
    assert.equal(runs, 0);
  });

  it('refuses arguments it cannot fingerprint, naming the path', async () => {
    const work = idempotent(async (_cb: () => void) => 1, { store: new MemoryStore(), name: 'w', key: () => 'k' });
    await assert.rejects(
      work(() => {}),
      withCode(ErrorCode.FINGERPRINT_UNSUPPORTED, /a function at \$\[0\]/),
    );
  });

  it('refuses bad options with INVALID_OPTIONS', () => {
    const store = new MemoryStore();
    assert.throws(() => idempotent(async () => 1, { store }), withCode(ErrorCode.INVALID_OPTIONS, /pass `name`/));
    assert.throws(
      () => idempotent(async function f() {}, { store, leaseMs: -1 }),
      withCode(ErrorCode.INVALID_OPTIONS, /leaseMs/),
    );
    assert.throws(
      () => idempotent(async function f() {}, { store, leaseMs: 100, heartbeatMs: 100 }),
      withCode(ErrorCode.INVALID_OPTIONS, /heartbeatMs/),
    );
    assert.throws(
      () => idempotent(async function f() {}, { store, encryptionKey: new Uint8Array(5) }),
      withCode(ErrorCode.INVALID_OPTIONS, /32/),
    );
    assert.throws(() => idempotent(async function f() {}, {} as never), withCode(ErrorCode.INVALID_OPTIONS, /store/));
    assert.throws(
      () => idempotent(async function f() {}, { store, retentionMs: 1000, leaseMs: 5000 }),
      withCode(ErrorCode.INVALID_OPTIONS, /retentionMs \(1000\) must be longer than leaseMs/),
    );
  });

  it('runs again after the retention ends', async () => {
    let runs = 0;
    const work = idempotent(async (_id: string) => ++runs, {
      store: new MemoryStore(),
      name: 'w',
      key: (id) => id,
      retentionMs: 40,
      leaseMs: 20,
      heartbeatMs: 0,
    });
    assert.equal(await work('k'), 1);
    assert.equal(await work('k'), 1);
    await sleep(60);
    assert.equal(await work('k'), 2);
  });
});
