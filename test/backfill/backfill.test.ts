import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  BACKFILL_NAMESPACE,
  type BackfillProgress,
  backfill,
  backfillKeyOf,
  DEFAULT_BACKFILL_RETENTION_MS,
} from '../../src/backfill/index.js';
import { fingerprintOf } from '../../src/core/canonical.js';
import { Engine } from '../../src/core/engine.js';
import { isIdempotencyError } from '../../src/core/errors.js';
import type { AdminStore, ClaimInput, ClaimResult } from '../../src/core/store.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { seedsWithFresh, seedTestOptions } from '../random-seeds.js';

type Factory = { createStore(ns: string): Promise<AdminStore>; dropStore?(ns: string): Promise<void> };

const ids = (n: number, prefix = 'item') => Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}` }));

/** Counts handler calls per key. */
function counter() {
  const calls = new Map<string, number>();
  return {
    calls,
    handler: async (item: { id: string }) => {
      calls.set(item.id, (calls.get(item.id) ?? 0) + 1);
    },
    total: () => [...calls.values()].reduce((sum, n) => sum + n, 0),
  };
}

for (const kind of ['memory', 'sqlite', 'postgres'] as const) {
  describe(`backfill on ${kind}`, () => {
    const namespace = `bf_${kind}_${randomBytes(4).toString('hex')}`;
    let factory: Factory;
    let store: AdminStore;

    before(async () => {
      factory = (await import(`../stores/${kind}.factory.ts`)) as Factory;
      store = await factory.createStore(namespace);
    });
    after(async () => {
      await store.close();
      await factory.dropStore?.(namespace);
    });

    it('processes every item once, and a re-run skips them all without calling the handler', async () => {
      const items = ids(1200);
      const { calls, handler, total } = counter();
      const first = await backfill({ name: 'once', items, key: (item) => item.id, handler, store, batchSize: 300 });
      assert.deepEqual(
        { done: first.done, skipped: first.skipped, failed: first.failed, stopped: first.stopped },
        { done: 1200, skipped: 0, failed: [], stopped: false },
      );
      assert.equal(calls.size, 1200);
      assert.equal(total(), 1200);
      const again = await backfill({ name: 'once', items, key: (item) => item.id, handler, store, batchSize: 300 });
      assert.deepEqual(
        { done: again.done, skipped: again.skipped, failed: again.failed },
        { done: 0, skipped: 1200, failed: [] },
      );
      assert.equal(total(), 1200);
    });

    it('goes on from where an earlier run stopped: only the new items are processed', async () => {
      const { handler, total } = counter();
      await backfill({ name: 'grow', items: ids(100), key: (item) => item.id, handler, store });
      const result = await backfill({ name: 'grow', items: ids(250), key: (item) => item.id, handler, store });
      assert.deepEqual({ done: result.done, skipped: result.skipped }, { done: 150, skipped: 100 });
      assert.equal(total(), 250);
    });

    it('keeps two backfills with different names apart: each processes the same items', async () => {
      const { handler, total } = counter();
      const a = await backfill({ name: 'apart-a', items: ids(50), key: (item) => item.id, handler, store });
      const b = await backfill({ name: 'apart-b', items: ids(50), key: (item) => item.id, handler, store });
      assert.deepEqual([a.done, b.done], [50, 50]);
      assert.equal(total(), 100);
    });
  });
}

describe('backfill', () => {
  it('retries a failing handler, then reports the item failed and releases it for the next run', async () => {
    const store = new MemoryStore();
    const attempts = new Map<string, number[]>();
    const broken = new Set(['item-3', 'item-7']);
    const handler = async (item: { id: string }, context: { attempt: number }) => {
      attempts.set(item.id, [...(attempts.get(item.id) ?? []), context.attempt]);
      if (item.id === 'item-5' && context.attempt === 1) throw new Error('flaky once');
      if (broken.has(item.id)) throw new Error(`cannot process ${item.id}`);
    };
    const options = { name: 'retries', items: ids(10), key: (item: { id: string }) => item.id, handler, store };
    const first = await backfill({ ...options, maxAttempts: 3, retryDelayMs: 1 });
    assert.equal(first.done, 8);
    assert.equal(first.retried, 1 + 2 * 2);
    assert.deepEqual(
      first.failed
        .map(({ key, error }) => ({ key, message: (error as Error).message }))
        .sort((a, b) => a.key.localeCompare(b.key)),
      [
        { key: 'item-3', message: 'cannot process item-3' },
        { key: 'item-7', message: 'cannot process item-7' },
      ],
    );
    assert.deepEqual(attempts.get('item-5'), [1, 2]);
    assert.deepEqual(attempts.get('item-3'), [1, 2, 3]);

    broken.delete('item-3');
    const second = await backfill({ ...options, maxAttempts: 1 });
    assert.deepEqual({ done: second.done, skipped: second.skipped }, { done: 1, skipped: 8 });
    assert.deepEqual(
      second.failed.map(({ key }) => key),
      ['item-7'],
    );
    assert.deepEqual(attempts.get('item-3'), [1, 2, 3, 1]);
  });

  it('processes an item once when the key function gives its key to two items in one run', async () => {
    const store = new MemoryStore();
    const seen: number[] = [];
    const items = [
      { id: 'a', n: 1 },
      { id: 'b', n: 2 },
      { id: 'a', n: 3 },
      { id: 'a', n: 4 },
    ];
    const result = await backfill({
      name: 'duplicates',
      items,
      key: (item) => item.id,
      handler: async (item) => {
        seen.push(item.n);
        await new Promise((resolve) => setTimeout(resolve, 5));
      },
      store,
      concurrency: 4,
    });
    assert.deepEqual({ done: result.done, skipped: result.skipped }, { done: 2, skipped: 2 });
    assert.deepEqual(seen.sort(), [1, 2]);
  });

  it('reads an async iterable lazily: never more than a few batches ahead of the items settled', async () => {
    const store = new MemoryStore();
    const batchSize = 20;
    const concurrency = 3;
    let pulled = 0;
    let handled = 0;
    let mostAhead = 0;
    async function* items() {
      for (let i = 0; i < 2000; i++) {
        pulled++;
        mostAhead = Math.max(mostAhead, pulled - handled);
        yield { id: `lazy-${i}` };
      }
    }
    const result = await backfill({
      name: 'lazy',
      items: items(),
      key: (item) => item.id,
      handler: async () => {
        await new Promise((resolve) => setImmediate(resolve));
        handled++;
      },
      store,
      batchSize,
      concurrency,
    });
    assert.equal(result.done, 2000);
    // One batch being filled, one whose records are being read, one being sorted, one queued,
    // and the items in flight.
    assert.ok(mostAhead <= 4 * batchSize + concurrency, `read ${mostAhead} items ahead`);
  });

  it('waits for an item another runner is processing, and skips it once that runner finishes', async () => {
    const store = new MemoryStore();
    let openGate: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    const calls: string[] = [];
    let started: () => void = () => {};
    const firstStarted = new Promise<void>((resolve) => {
      started = resolve;
    });
    const first = backfill({
      name: 'shared',
      items: [{ id: 'x' }],
      key: (item) => item.id,
      handler: async (item) => {
        calls.push(`first:${item.id}`);
        started();
        await gate;
      },
      store,
    });
    await firstStarted;
    const progress: BackfillProgress[] = [];
    const second = backfill({
      name: 'shared',
      items: [{ id: 'x' }, { id: 'y' }],
      key: (item) => item.id,
      handler: async (item) => {
        calls.push(`second:${item.id}`);
        if (item.id === 'y') setTimeout(openGate, 20);
      },
      store,
      onProgress: (p) => progress.push(p),
      progressIntervalMs: 5,
    });
    const [a, b] = await Promise.all([first, second]);
    assert.deepEqual([a.done, a.skipped], [1, 0]);
    assert.deepEqual([b.done, b.skipped, b.failed.length], [1, 1, 0]);
    assert.deepEqual(calls.sort(), ['first:x', 'second:y']);
    assert.ok(
      progress.some((p) => p.waiting === 1),
      'the second run reported the item held by the first',
    );
  });

  it("takes over an item whose runner died once that runner's lease ends, and tells the handler", async () => {
    const store = new MemoryStore();
    // A runner that claimed item "x" and died: its lease (200 ms) is never extended nor completed.
    const dead = new Engine({ store, leaseMs: 200, heartbeatMs: 0 });
    const claim = await dead.begin({
      key: backfillKeyOf('takeover', 'x'),
      fingerprint: fingerprintOf(BACKFILL_NAMESPACE),
    });
    assert.equal(claim.kind, 'run');
    const contexts: { key: string; claims: number; idempotencyKey: string }[] = [];
    const result = await backfill({
      name: 'takeover',
      items: [{ id: 'x' }, { id: 'y' }],
      key: (item) => item.id,
      handler: async (_item, { key, claims, idempotencyKey }) => {
        contexts.push({ key, claims, idempotencyKey });
      },
      store,
    });
    assert.equal(result.done, 2);
    assert.deepEqual(
      contexts.sort((a, b) => a.key.localeCompare(b.key)),
      [
        { key: 'x', claims: 2, idempotencyKey: backfillKeyOf('takeover', 'x') },
        { key: 'y', claims: 1, idempotencyKey: backfillKeyOf('takeover', 'y') },
      ],
    );
  });

  it('reports progress with done, skipped, failed, rate and time left, and a last report at the end', async () => {
    const store = new MemoryStore();
    const { handler } = counter();
    await backfill({ name: 'progress', items: ids(30), key: (item) => item.id, handler, store });
    const reports: BackfillProgress[] = [];
    const result = await backfill({
      name: 'progress',
      items: ids(100),
      key: (item) => item.id,
      handler: async (item) => {
        if (item.id === 'item-99') throw new Error('no');
      },
      maxAttempts: 1,
      store,
      onProgress: (progress) => reports.push(progress),
    });
    const last = reports.at(-1);
    assert.ok(last);
    assert.deepEqual(
      { done: last.done, skipped: last.skipped, failed: last.failed, settled: last.settled, total: last.total },
      { done: 69, skipped: 30, failed: 1, settled: 100, total: 100 },
    );
    assert.equal(last.remainingMs, 0);
    assert.equal(last.inFlight, 0);
    assert.ok(last.itemsPerSecond > 0);
    assert.equal(result.failed.length, 1);
  });

  it('stops on its signal: no new item starts, the result says stopped, and the next run goes on', async () => {
    const store = new MemoryStore();
    const stop = new AbortController();
    const { calls, handler } = counter();
    const first = await backfill({
      name: 'stoppable',
      items: ids(1000),
      key: (item) => item.id,
      handler: async (item) => {
        await handler(item);
        if (calls.size === 100) stop.abort();
      },
      store,
      concurrency: 1,
      batchSize: 10,
      signal: stop.signal,
    });
    assert.equal(first.stopped, true);
    assert.equal(first.done, 100);
    const second = await backfill({ name: 'stoppable', items: ids(1000), key: (item) => item.id, handler, store });
    assert.deepEqual(
      { done: second.done, skipped: second.skipped, stopped: second.stopped },
      { done: 900, skipped: 100, stopped: false },
    );
    assert.equal(calls.size, 1000);
    assert.ok([...calls.values()].every((n) => n === 1));
  });

  it('says stopped when a stop leaves unprocessed an item another runner claimed after this run read it', async () => {
    const stop = new AbortController();
    const raced = backfillKeyOf('raced', 'x');
    /** Another runner claims x between this run's read and its claim, and the run is stopped then. */
    class RacedStore extends MemoryStore {
      override async claim(input: ClaimInput): Promise<ClaimResult> {
        if (input.key === raced && !stop.signal.aborted) {
          stop.abort();
          await super.claim({ ...input, token: 'the-other-runner', leaseExpiresAtMs: input.nowMs + 60_000 });
        }
        return await super.claim(input);
      }
    }
    const { calls, handler } = counter();
    const result = await backfill({
      name: 'raced',
      items: [{ id: 'a' }, { id: 'x' }],
      key: (item) => item.id,
      // By the time a settles, every item was read: x is lost after the read, not during it.
      handler: async (item) => {
        await handler(item);
        await new Promise((resolve) => setTimeout(resolve, 5));
      },
      store: new RacedStore(),
      concurrency: 1,
      signal: stop.signal,
    });
    assert.deepEqual([...calls.keys()], ['a'], 'x was not processed by this run');
    assert.deepEqual(
      { done: result.done, skipped: result.skipped, failed: result.failed.length },
      { done: 1, skipped: 0, failed: 0 },
    );
    assert.equal(result.stopped, true, 'x is neither done, skipped nor failed: the run did not go to its end');
  });

  it('lets timers and signals run while a store and a handler that answer at once keep it busy', async () => {
    const store = new MemoryStore();
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 1);
    const result = await backfill({
      name: 'busy',
      items: ids(20_000),
      key: (item) => item.id,
      handler: () => {},
      store,
      signal: stop.signal,
    });
    assert.equal(result.stopped, true);
    assert.ok(result.done < 20_000, `stopped after ${result.done} items`);
  });

  it('keeps records 30 days by default', async () => {
    const store = new MemoryStore();
    const nowMs = Date.now();
    await backfill({
      name: 'kept',
      items: [{ id: 'a' }],
      key: (item) => item.id,
      handler: () => {},
      store,
      now: () => nowMs,
    });
    const record = await store.get(backfillKeyOf('kept', 'a'));
    assert.equal(record?.state, 'completed');
    assert.equal(record?.expiresAtMs, nowMs + DEFAULT_BACKFILL_RETENTION_MS);
    assert.equal(DEFAULT_BACKFILL_RETENTION_MS, 30 * 24 * 60 * 60 * 1000);
  });

  it('takes its name from a named handler, and asks for one when the handler has none', async () => {
    const store = new MemoryStore();
    async function sendInvoice() {}
    const named = await backfill({ items: [1], key: String, handler: sendInvoice, store });
    assert.equal(named.name, 'sendInvoice');
    await assert.rejects(
      backfill({ items: [1], key: String, handler: async () => {}, store }),
      (error) => isIdempotencyError(error, 'INVALID_OPTIONS') && /`name` is required/.test(error.message),
    );
  });

  it('refuses a handler or key that is not a function and a concurrency of 0, saying what to give', async () => {
    const store = new MemoryStore();
    const base = { name: 'bad', items: [1], key: String, handler: () => {}, store };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ handler: 'nope' }, /`handler` must be a function/],
      [{ key: 'id' }, /`key` must be a function/],
      [{ concurrency: 0 }, /`concurrency` must be a whole number from 1 to 1000, got 0/],
      [{ items: 42 }, /`items` must be an array, an iterable or an async iterable/],
      [{ maxAttempts: 0 }, /`maxAttempts` must be a whole number 1 or more/],
      [{ batchSize: 1001 }, /`batchSize` must be a whole number from 1 to 1000/],
      [{ name: '' }, /`name` must be a string of 1 to 200 characters/],
      // Past 2^31 - 1 ms, Node fires a timer after 1 ms: onProgress, or the lease's heartbeat (a
      // third of the lease by default), would run without pause.
      [{ leaseMs: 7_000_000_000 }, /`leaseMs` must be a whole number from 1 to 2147483647/],
      [{ heartbeatMs: 2 ** 31 }, /`heartbeatMs` must be a whole number from 0 to 2147483647/],
      [
        { onProgress: () => {}, progressIntervalMs: 2 ** 31 },
        /`progressIntervalMs` must be a whole number from 1 to 2147483647/,
      ],
    ];
    for (const [override, message] of cases) {
      await assert.rejects(
        backfill({ ...base, ...override } as Parameters<typeof backfill>[0]),
        (error) => isIdempotencyError(error, 'INVALID_OPTIONS') && message.test(error.message),
        `${JSON.stringify(override)} refused with ${message}`,
      );
    }
  });

  it('stops the run when the key function gives an empty or non-string key, before the items after it', async () => {
    const store = new MemoryStore();
    const { calls, handler } = counter();
    for (const [bad, message] of [
      ['', /gave an empty string for item #25/],
      [7, /gave number for item #25/],
    ] as const) {
      const items = ids(40).map((item, i) => (i === 25 ? { id: bad as unknown as string } : item));
      await assert.rejects(
        backfill({ name: `bad-key-${String(bad)}`, items, key: (item) => item.id, handler, store, batchSize: 5 }),
        (error) => isIdempotencyError(error, 'INVALID_OPTIONS') && message.test(error.message),
      );
    }
    assert.ok(calls.size > 0, 'the items of the first batches were processed');
    assert.ok(
      [...calls.keys()].every((key) => Number(key.slice('item-'.length)) < 25),
      'no item at or after the bad key',
    );
  });

  describe('randomized failures', () => {
    for (const seed of seedsWithFresh([1, 2, 3])) {
      it(
        `applies each item's effect once over runs with random failures (seed ${seed.seed})`,
        seedTestOptions(seed),
        async () => {
          const store = new MemoryStore();
          let state = seed.seed;
          const random = () => {
            state = (state * 1103515245 + 12345) % 2 ** 31;
            return state / 2 ** 31;
          };
          const effects = new Map<string, number>();
          const items = ids(300);
          let runs = 0;
          let failedLast = Number.POSITIVE_INFINITY;
          while (failedLast > 0) {
            runs++;
            assert.ok(runs < 50, 'every item got done within 50 runs');
            const result = await backfill({
              name: 'random',
              items,
              key: (item) => item.id,
              handler: async (item) => {
                if (random() < 0.3) throw new Error('random failure');
                effects.set(item.id, (effects.get(item.id) ?? 0) + 1);
                if (random() < 0.2) await new Promise((resolve) => setImmediate(resolve));
              },
              store,
              concurrency: 1 + Math.floor(random() * 8),
              batchSize: 1 + Math.floor(random() * 100),
              maxAttempts: 1 + Math.floor(random() * 3),
              retryDelayMs: 0,
            });
            assert.equal(result.done + result.skipped + result.failed.length, items.length);
            failedLast = result.failed.length;
          }
          assert.equal(effects.size, items.length);
          assert.ok([...effects.values()].every((n) => n === 1));
        },
      );
    }
  });
});
