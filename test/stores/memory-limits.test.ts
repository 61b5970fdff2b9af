import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Engine } from '../../src/core/engine.js';
import { isIdempotencyError } from '../../src/core/errors.js';
import type { ClaimInput, IdempotencyRecord } from '../../src/core/store.js';
import { ExpiryQueue } from '../../src/stores/memory/expiry-queue.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { seedsWithFresh, seedTestOptions } from '../random-seeds.js';

const T = 1_700_000_000_000;

function claim(key: string, nowMs: number, expiresAtMs: number, fingerprint = 'f'): ClaimInput {
  return { key, fingerprint, token: `t-${key}-${nowMs}`, nowMs, leaseExpiresAtMs: nowMs + 1000, expiresAtMs };
}

/** mulberry32: the same sequence for the same seed on every machine. */
function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEEDS = seedsWithFresh([1, 7, 42, 2024]);

describe('MemoryStore limits', () => {
  it('refuses a new key past maxRecords with STORE_UNAVAILABLE that says what to do, and keeps every live key', async () => {
    const store = new MemoryStore({ maxRecords: 3 });
    for (const key of ['a', 'b', 'c']) assert.equal((await store.claim(claim(key, T, T + 60_000))).claimed, true);
    await assert.rejects(store.claim(claim('d', T + 1, T + 60_000)), (error: unknown) => {
      assert.ok(isIdempotencyError(error, 'STORE_UNAVAILABLE'));
      assert.match(error.message, /memory store is full: it holds 3 live records \(maxRecords 3\)/);
      assert.match(error.message, /Raise maxRecords or maxBytes, shorten the retention, or use a persistent store/);
      return true;
    });
    for (const key of ['a', 'b', 'c']) assert.notEqual(await store.get(key, T + 1), null, `${key} was kept`);
    assert.equal((await store.claim(claim('a', T + 2, T + 60_000))).claimed, false, 'a known key is still answered');
  });

  it('makes room for a new key by dropping expired records only', async () => {
    const store = new MemoryStore({ maxRecords: 3 });
    await store.claim(claim('short', T, T + 1000));
    await store.claim(claim('long-1', T, T + 60_000));
    await store.claim(claim('long-2', T, T + 60_000));
    await assert.rejects(store.claim(claim('new', T + 999, T + 60_000)), /is full/);
    assert.equal((await store.claim(claim('new', T + 1000, T + 60_000))).claimed, true);
    assert.equal(await store.get('short'), null, 'the expired record made room');
    assert.notEqual(await store.get('long-1'), null);
    assert.notEqual(await store.get('long-2'), null);
  });

  it('keeps a record whose completion moved its retention end later, and drops it at the new end', async () => {
    const store = new MemoryStore({ maxRecords: 2 });
    const first = await store.claim(claim('raised', T, T + 1000));
    await store.claim(claim('other', T, T + 60_000));
    const token = first.record.token;
    assert.equal(
      await store.complete({
        key: 'raised',
        token,
        result: new Uint8Array([1]),
        nowMs: T + 500,
        expiresAtMs: T + 5000,
      }),
      true,
    );
    // Past the claim's retention end, before the completion's: alive to a sweep and to a full store.
    assert.equal(await store.sweep(T + 2000), 0);
    await assert.rejects(store.claim(claim('new', T + 2000, T + 60_000)), /is full/);
    assert.equal((await store.get('raised', T + 2000))?.state, 'completed');
    assert.equal(await store.sweep(T + 4999), 0);
    assert.equal(await store.sweep(T + 5000), 1, 'dropped at the retention end the completion set');
    assert.equal(await store.get('raised'), null);
    assert.equal((await store.claim(claim('new', T + 5000, T + 60_000))).claimed, true);
  });

  it('drops a record at a retention end its completion moved earlier', async () => {
    const store = new MemoryStore();
    const first = await store.claim(claim('lowered', T, T + 60_000));
    const token = first.record.token;
    await store.complete({ key: 'lowered', token, result: new Uint8Array([1]), nowMs: T + 10, expiresAtMs: T + 1000 });
    assert.equal(await store.sweep(T + 999), 0);
    assert.equal(await store.sweep(T + 1000), 1);
    assert.equal(store.size, 0);
  });

  it('refuses a new key once the records take maxBytes, counting stored results, and frees the bytes on delete', async () => {
    const store = new MemoryStore({ maxBytes: 20_000 });
    const first = await store.claim(claim('big', T, T + 60_000));
    assert.equal(first.claimed, true);
    const before = store.bytes;
    await store.complete({
      key: 'big',
      token: first.record.token,
      result: new Uint8Array(19_600),
      nowMs: T,
      expiresAtMs: T + 60_000,
    });
    assert.equal(store.bytes, before + 19_600);
    await assert.rejects(store.claim(claim('next', T + 1, T + 60_000)), (error: unknown) => {
      assert.ok(isIdempotencyError(error, 'STORE_UNAVAILABLE'));
      assert.match(error.message, /of live records \(maxBytes 19\.5 KiB\)/);
      return true;
    });
    assert.equal(await store.delete('big'), true);
    assert.equal(store.bytes, 0);
    assert.equal((await store.claim(claim('next', T + 1, T + 60_000))).claimed, true);
  });

  it('counts journal entries against maxBytes, never refuses an append, and uncounts entries wherever they go', async () => {
    const store = new MemoryStore({ maxBytes: 20_000 });
    const first = await store.claim(claim('run', T, T + 60_000));
    const { token } = first.record;
    const empty = store.bytes;
    const append = (seq: number, size: number, nowMs = T) =>
      store.append({ key: 'run', token, seq, data: new Uint8Array(size), nowMs });
    assert.equal(await append(0, 10_000), true);
    assert.equal(await append(1, 10_000), true, 'an append past maxBytes is kept: its step has run');
    assert.equal(store.bytes, empty + 20_000 + 2 * 64, 'data plus 64 bytes an entry');
    await assert.rejects(store.claim(claim('next', T + 1, T + 60_000)), /is full/);
    assert.equal(await append(0, 100), true, 'seq 0 starts afresh');
    assert.equal(store.bytes, empty + 100 + 64, 'the entries seq 0 removed are uncounted');
    assert.equal(await store.release('run', token), true);
    assert.equal(store.bytes, 0, 'release uncounts the journal with the record');

    // A fresh claim over an expired record drops the old journal; reopen and sweep uncount theirs.
    const second = await store.claim(claim('run', T, T + 1000));
    await store.append({ key: 'run', token: second.record.token, seq: 0, data: new Uint8Array(500), nowMs: T });
    const fresh = await store.claim(claim('run', T + 1000, T + 60_000));
    assert.deepEqual(await store.entries('run'), []);
    assert.equal(store.bytes, empty);
    const run = { key: 'run', token: fresh.record.token, nowMs: T + 1001 };
    await store.append({ ...run, seq: 0, data: new Uint8Array(500) });
    await store.complete({ ...run, result: new Uint8Array(0), expiresAtMs: T + 2000 });
    // A token of the same length, so the record counts as many bytes as before.
    const again = 'x'.repeat(run.token.length);
    const reopen = { key: 'run', expectedToken: run.token, token: again, leaseExpiresAtMs: T + 1500 };
    assert.equal(await store.reopen({ ...reopen, nowMs: T + 1002, expiresAtMs: T + 2000 }), true);
    assert.equal(store.bytes, empty);
    await store.append({ key: 'run', token: again, seq: 0, data: new Uint8Array(500), nowMs: T + 1003 });
    assert.equal(await store.sweep(T + 2000), 1);
    assert.equal(store.bytes, 0);
    assert.equal(store.size, 0);
  });

  it('reaches the engine as a 503-class STORE_UNAVAILABLE, nothing run', async () => {
    const engine = new Engine({ store: new MemoryStore({ maxRecords: 1 }) });
    assert.equal((await engine.begin({ key: 'one', fingerprint: 'f' })).kind, 'run');
    await assert.rejects(engine.begin({ key: 'two', fingerprint: 'f' }), (error: unknown) =>
      isIdempotencyError(error, 'STORE_UNAVAILABLE'),
    );
  });

  it('refuses limits that are not whole numbers above 0', () => {
    assert.throws(() => new MemoryStore({ maxRecords: 0 }), /maxRecords must be a whole number above 0/);
    assert.throws(() => new MemoryStore({ maxBytes: Number.NaN }), /maxBytes must be a whole number above 0/);
  });

  for (const entry of SEEDS) {
    const { seed } = entry;
    it(
      `sweeps exactly the expired records and never drops a live one under random operations (seed ${seed})`,
      seedTestOptions(entry),
      async () => {
        const random = rng(seed);
        const store = new MemoryStore({ maxRecords: 40 });
        /** The model: what the store must hold, by key. */
        const model = new Map<string, IdempotencyRecord>();
        let now = T;
        try {
          for (let step = 0; step < 3000; step++) {
            now += Math.floor(random() * 50);
            const key = `k${Math.floor(random() * 60)}`;
            const roll = random();
            const current = model.get(key);
            if (roll < 0.45) {
              const input = claim(key, now, now + 200 + Math.floor(random() * 2000));
              let result: Awaited<ReturnType<MemoryStore['claim']>> | undefined;
              try {
                result = await store.claim(input);
              } catch (error) {
                assert.ok(isIdempotencyError(error, 'STORE_UNAVAILABLE'), String(error));
                const live = [...model.values()].filter((record) => record.expiresAtMs > now).length;
                assert.ok(live >= 40 && current === undefined, 'refused only a new key, and only when full');
                result = undefined;
              }
              if (result?.claimed) model.set(key, { ...result.record });
            } else if (roll < 0.7 && current?.state === 'in_progress') {
              const expiresAtMs = now + Math.floor(random() * 3000);
              const stored = await store.complete({
                key,
                token: current.token,
                result: new Uint8Array(Math.floor(random() * 100)),
                nowMs: now,
                expiresAtMs,
              });
              assert.equal(stored, true);
              model.set(key, { ...current, state: 'completed', expiresAtMs });
            } else if (roll < 0.8 && current?.state === 'in_progress') {
              assert.equal(await store.release(key, current.token), true);
              model.delete(key);
            } else if (roll < 0.85) {
              assert.equal(await store.delete(key), current !== undefined);
              model.delete(key);
            } else {
              const expired = [...model.values()].filter((record) => record.expiresAtMs <= now).length;
              const limit = 1 + Math.floor(random() * 5);
              const swept = await store.sweep(now, limit);
              assert.equal(swept, Math.min(limit, expired), `sweep(${now}, ${limit})`);
            }
            // The store may drop expired records on its own (sweep, or room for a new key): the model follows.
            for (const [name, record] of [...model]) {
              if (record.expiresAtMs <= now && (await store.get(name)) === null) model.delete(name);
            }
            assert.equal(store.size, model.size, 'the store holds what the model holds');
            // Every record the model holds unexpired is in the store, unchanged in state.
            for (const [name, record] of model) {
              if (record.expiresAtMs <= now) continue;
              const kept = await store.get(name, now);
              assert.equal(kept?.state, record.state, `${name} at step ${step}`);
            }
          }
        } catch (error) {
          throw new Error(`seed ${seed}: ${(error as Error).message}`, { cause: error });
        }
      },
    );
  }
});

describe('ExpiryQueue', () => {
  for (const entry of SEEDS) {
    const { seed } = entry;
    it(
      `gives keys back in the order they are due, replaced and unscheduled ones left out (seed ${seed})`,
      seedTestOptions(entry),
      () => {
        const random = rng(seed);
        const queue = new ExpiryQueue();
        const model = new Map<string, number>();
        let now = 0;
        try {
          for (let step = 0; step < 5000; step++) {
            const key = `k${Math.floor(random() * 300)}`;
            const roll = random();
            if (roll < 0.6) {
              const at = now + Math.floor(random() * 1000);
              queue.schedule(key, at);
              model.set(key, at);
            } else if (roll < 0.75) {
              queue.unschedule(key);
              model.delete(key);
            } else {
              now += Math.floor(random() * 200);
              const due = [...model].filter(([, at]) => at <= now).sort((a, b) => a[1] - b[1]);
              const popped: string[] = [];
              for (let key = queue.popDue(now); key !== undefined; key = queue.popDue(now)) popped.push(key);
              assert.deepEqual(
                popped.map((name) => model.get(name)),
                due.map(([, at]) => at),
                'due keys come out soonest first',
              );
              assert.deepEqual(new Set(popped), new Set(due.map(([name]) => name)));
              for (const name of popped) model.delete(name);
            }
            assert.equal(queue.size, model.size);
          }
        } catch (error) {
          throw new Error(`seed ${seed}: ${(error as Error).message}`, { cause: error });
        }
      },
    );
  }
});
