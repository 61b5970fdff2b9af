import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Engine } from '../../src/core/engine.js';
import { isIdempotencyError } from '../../src/core/errors.js';
import { idempotent } from '../../src/core/idempotent.js';
import { OutcomeKind } from '../../src/core/outcome.js';
import type { ClaimInput, ClaimResult } from '../../src/core/store.js';
import { HttpIdempotency } from '../../src/http/http-idempotency.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { Workflows } from '../../src/workflow/index.js';

/** A memory store that counts the claims it is asked for. */
class CountingStore extends MemoryStore {
  claims = 0;
  override async claim(input: ClaimInput): Promise<ClaimResult> {
    this.claims += 1;
    return super.claim(input);
  }
}

/** A clock the test moves by hand (the engine's `now` option). */
function clock(startMs = 1_700_000_000_000) {
  let nowMs = startMs;
  return {
    now: () => nowMs,
    advance: (ms: number) => {
      nowMs += ms;
    },
  };
}

function charges(options: { replayCacheMs?: number; replayCacheEntries?: number; retentionMs?: number } = {}) {
  const store = new CountingStore();
  const time = clock();
  let runs = 0;
  const charge = idempotent(
    async (order: { id: string; amount: number }) => {
      runs += 1;
      return { charged: order.amount, run: runs };
    },
    { store, name: 'charge', key: (order) => order.id, now: time.now, heartbeatMs: 0, leaseMs: 1000, ...options },
  );
  return { store, time, charge, runs: () => runs };
}

describe('replay cache (replayCacheMs)', () => {
  it('is off by default: every replay asks the store', async () => {
    const { store, charge } = charges();
    await charge({ id: 'a', amount: 5 });
    await charge({ id: 'a', amount: 5 });
    await charge({ id: 'a', amount: 5 });
    assert.equal(store.claims, 3);
  });

  it('answers replays of a record this process completed without a store call, with the same value', async () => {
    const { store, charge, runs } = charges({ replayCacheMs: 5000 });
    const first = await charge({ id: 'a', amount: 5 });
    for (let i = 0; i < 5; i++) assert.deepEqual(await charge({ id: 'a', amount: 5 }), first);
    assert.equal(store.claims, 1, 'only the first call reached the store');
    assert.equal(runs(), 1);
  });

  it('keeps records another process completed once it has replayed them', async () => {
    const store = new CountingStore();
    const time = clock();
    const options = { store, name: 'charge', key: (id: string) => id, now: time.now, replayCacheMs: 5000 };
    const elsewhere = idempotent(async (id: string) => `done ${id}`, { ...options, replayCacheMs: 0 });
    const here = idempotent(async (_id: string) => 'ran again', options);
    await elsewhere('k');
    assert.equal(await here('k'), 'done k');
    assert.equal(await here('k'), 'done k');
    assert.equal(store.claims, 2, 'the second replay here came from memory');
  });

  it('still refuses other arguments under a cached key, without a store call', async () => {
    const store = new CountingStore();
    const charge = idempotent(async (order: { id: string; amount: number }) => order.amount, {
      store,
      name: 'charge',
      key: (order) => order.id,
      replayCacheMs: 5000,
    });
    await charge({ id: 'a', amount: 5 });
    await assert.rejects(charge({ id: 'a', amount: 6 }), (error: unknown) =>
      isIdempotencyError(error, 'FINGERPRINT_MISMATCH'),
    );
    assert.equal(store.claims, 1);
  });

  it('asks the store again once replayCacheMs has passed, and never past the record retention', async () => {
    const cached = charges({ replayCacheMs: 5000 });
    await cached.charge({ id: 'a', amount: 5 });
    cached.time.advance(4999);
    await cached.charge({ id: 'a', amount: 5 });
    assert.equal(cached.store.claims, 1);
    cached.time.advance(1);
    await cached.charge({ id: 'a', amount: 5 });
    assert.equal(cached.store.claims, 2, 'the copy ended after replayCacheMs');

    const short = charges({ replayCacheMs: 60_000, retentionMs: 2000 });
    await short.charge({ id: 'a', amount: 5 });
    short.time.advance(2000);
    const again = await short.charge({ id: 'a', amount: 5 });
    assert.equal(again.run, 2, 'past its retention the key runs again, whatever replayCacheMs says');
    assert.equal(short.store.claims, 2);
  });

  it('replays a key deleted from the store until its copy ends (the documented exception)', async () => {
    const { store, time, charge, runs } = charges({ replayCacheMs: 5000 });
    await charge({ id: 'a', amount: 5 });
    const [record] = (await store.list()).records;
    assert.ok(record !== undefined);
    assert.equal(await store.delete(record.key), true);
    await charge({ id: 'a', amount: 5 });
    assert.equal(runs(), 1, 'replayed from memory after the delete');
    time.advance(5000);
    await charge({ id: 'a', amount: 5 });
    assert.equal(runs(), 2, 'runs again once the copy ended');
  });

  it('keeps at most replayCacheEntries records, dropping the oldest first', async () => {
    const { store, charge } = charges({ replayCacheMs: 5000, replayCacheEntries: 2 });
    for (const id of ['a', 'b', 'c']) await charge({ id, amount: 1 });
    assert.equal(store.claims, 3);
    await charge({ id: 'c', amount: 1 });
    await charge({ id: 'b', amount: 1 });
    assert.equal(store.claims, 3, 'b and c are kept');
    await charge({ id: 'a', amount: 1 });
    assert.equal(store.claims, 4, 'a was dropped to make room for c');
  });

  it('keeps its own copy of a result: bytes changed after the replay do not reach the next one', async () => {
    const store = new MemoryStore();
    const engine = new Engine({ store, replayCacheMs: 5000 });
    const input = { key: 'k', fingerprint: 'f' };
    const first = await engine.begin(input);
    assert.equal(first.kind, 'run');
    if (first.kind !== 'run') return;
    await first.lease.complete({ kind: OutcomeKind.value, payload: new Uint8Array([1, 2, 3]) });
    const replayed = await engine.begin(input);
    assert.equal(replayed.kind, 'replay');
    if (replayed.kind !== 'replay') return;
    assert.deepEqual([...replayed.outcome.payload], [1, 2, 3]);
    replayed.outcome.payload.fill(9);
    (replayed.record.result as Uint8Array).fill(9);
    const again = await engine.begin(input);
    assert.equal(again.kind === 'replay' && [...again.outcome.payload].join(), '1,2,3');
  });

  it('keeps no record whose work failed: a retry runs again', async () => {
    const store = new CountingStore();
    let calls = 0;
    const flaky = idempotent(
      async (_id: string) => {
        calls += 1;
        if (calls === 1) throw new Error('declined');
        return 'ok';
      },
      { store, name: 'flaky', key: (id) => id, replayCacheMs: 5000 },
    );
    await assert.rejects(flaky('k'), /declined/);
    assert.equal(await flaky('k'), 'ok');
    assert.equal(calls, 2);
  });

  it('serves HTTP replays from memory, with the stored response and a 422 for another body', async () => {
    const store = new CountingStore();
    const http = new HttpIdempotency({ store, replayCacheMs: 5000 });
    const request = (body: unknown) => ({
      method: 'POST',
      route: '/orders',
      url: '/orders',
      header: (name: string) => ({ 'idempotency-key': 'k1', authorization: 'Bearer x' })[name],
      body,
    });
    const first = await http.begin(request({ amount: 5 }));
    assert.equal(first.action, 'run');
    if (first.action !== 'run') return;
    first.recording.head(201, [['content-type', 'application/json']]);
    first.recording.write('{"id":1}');
    await first.recording.finish();
    for (let i = 0; i < 3; i++) {
      const replay = await http.begin(request({ amount: 5 }));
      assert.equal(replay.action, 'respond');
      if (replay.action !== 'respond') return;
      assert.equal(replay.response.status, 201);
      assert.equal(Buffer.from(replay.response.body).toString(), '{"id":1}');
    }
    const other = await http.begin(request({ amount: 6 }));
    assert.equal(other.action === 'respond' && other.response.status, 422);
    assert.equal(store.claims, 1);
  });

  it('refuses options it cannot use, saying what to give', () => {
    const store = new MemoryStore();
    assert.throws(() => new Engine({ store, replayCacheMs: -1 }), /replayCacheMs must be 0 or a positive number/);
    assert.throws(
      () => new Engine({ store, replayCacheMs: 10, replayCacheEntries: 0 }),
      /replayCacheEntries must be a whole number above 0/,
    );
    assert.throws(() => new Engine({ store, replayCacheMs: 10, replayCacheEntries: 1.5 }), /replayCacheEntries/);
    assert.throws(() => new Workflows({ store, replayCacheMs: 1000 } as never), /workflows do not take replayCacheMs/);
  });
});
