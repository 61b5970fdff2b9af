import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as nodeTest from 'node:test';
import { ErrorCode, isIdempotencyError } from '../core/errors.js';
import type { Store } from '../core/store.js';
import { bytes, claimInput, HOUR_MS, listAll } from './conformance-inputs.js';
import { extendKeepsRetention, lostCompletionAbortsSignal } from './lease-scenarios.js';
import { jobBase, killHolderMidLease, raceAcrossProcesses } from './process-scenarios.js';

/** The scenarios of the suite; name one in `skip` with a reason to skip it. */
export const StoreScenario = {
  cycle: 'claim, complete and replay',
  release: 'release and retry',
  mismatch: 'fingerprint mismatch',
  isolation: 'key isolation',
  takeover: 'lease expiry and takeover',
  staleToken: 'stale tokens',
  extendRetention: 'lease extension and retention',
  lostSignal: 'a refused completion',
  retention: 'retention expiry and sweep',
  binary: 'binary and large results',
  list: 'listing',
  remove: 'delete',
  concurrent: 'concurrent claims in one process',
  processes: 'claims racing across processes',
  crash: 'a holder killed with SIGKILL',
  ping: 'ping',
  close: 'close',
} as const;
export type StoreScenario = keyof typeof StoreScenario;

/** The part of a test runner the suite uses; `node:test` by default. */
export interface ConformanceTestApi {
  describe(name: string, fn: () => void): unknown;
  it(name: string, options: { skip?: string | boolean; timeout?: number }, fn: () => Promise<void>): unknown;
}

export interface StoreConformanceOptions {
  /** Name shown in the test titles, e.g. `postgres`. */
  name: string;
  /**
   * URL or absolute path of a module that exports `createStore(namespace)` (an empty store
   * isolated by `namespace`, a string of `[a-z0-9_]`, at most 40 characters) and, optionally,
   * `dropStore(namespace)`. Child processes import it too, so it must build the store itself.
   */
  factoryModule: string;
  /** Export name of the factory. Default `createStore`. */
  createExport?: string;
  /** Export name of the clean-up function. Default `dropStore`; skipped when absent. */
  dropExport?: string;
  /** Scenarios to skip, each with the reason (shown in the test report). */
  skip?: Partial<Record<StoreScenario, string>>;
  /** Processes in the cross-process race. Default 4. */
  processes?: number;
  /** Keys each process races for. Default 50. */
  claimsPerProcess?: number;
  /** Concurrent claims on one key in one process. Default 200. */
  concurrentClaims?: number;
  /** The test runner. Default `node:test`. */
  test?: ConformanceTestApi;
}

type Factory = {
  create: (namespace: string) => Promise<Store>;
  drop: ((namespace: string) => Promise<void>) | undefined;
};

/**
 * Registers the store conformance suite with the test runner: the same scenarios every Idem
 * store passes, against your real server. Use it to check a store you write yourself.
 *
 * @example
 * ```ts
 * // test/my-store.test.ts, with my-store.factory.ts exporting createStore(namespace)
 * import { runStoreConformance } from 'idem/testing';
 * runStoreConformance({ name: 'my-store', factoryModule: new URL('./my-store.factory.js', import.meta.url).href });
 * ```
 */
export function runStoreConformance(options: StoreConformanceOptions): void {
  const api: ConformanceTestApi = options.test ?? (nodeTest as unknown as ConformanceTestApi);
  let factory: Factory | undefined;
  const load = async (): Promise<Factory> => {
    if (factory !== undefined) return factory;
    const mod = (await import(options.factoryModule)) as Record<string, unknown>;
    const create = mod[options.createExport ?? 'createStore'];
    if (typeof create !== 'function') {
      throw new Error(`${options.factoryModule} must export ${options.createExport ?? 'createStore'}(namespace)`);
    }
    const drop = mod[options.dropExport ?? 'dropStore'];
    factory = {
      create: create as Factory['create'],
      drop: typeof drop === 'function' ? (drop as Factory['drop']) : undefined,
    };
    return factory;
  };

  /** Runs `body` with a fresh store in a fresh namespace, then closes and drops it. */
  const withStore = async (body: (store: Store, namespace: string) => Promise<void>): Promise<void> => {
    const { create, drop } = await load();
    const namespace = `c_${randomBytes(6).toString('hex')}`;
    const store = await create(namespace);
    try {
      await body(store, namespace);
    } finally {
      await store.close();
      await drop?.(namespace);
    }
  };

  const scenario = (id: StoreScenario, title: string, body: (store: Store, namespace: string) => Promise<void>) => {
    api.it(`${StoreScenario[id]}: ${title}`, { skip: options.skip?.[id] ?? false, timeout: 120_000 }, () =>
      withStore(body),
    );
  };

  api.describe(`store conformance: ${options.name}`, () => {
    scenario(
      'cycle',
      'one claim wins, a second sees it in progress, complete stores the result, a third replays it',
      async (store) => {
        const t = Date.now();
        const first = await store.claim(claimInput('k1', { nowMs: t, token: 'token-a' }));
        assert.equal(first.claimed, true);
        assert.equal(first.claimed && first.takeover, false);
        assert.equal(first.record.state, 'in_progress');
        assert.equal(first.record.token, 'token-a');
        assert.equal(first.record.attempts, 1);
        assert.equal(first.record.result, null);
        assert.equal(first.record.createdAtMs, t);

        const second = await store.claim(claimInput('k1', { nowMs: t + 1, token: 'token-b' }));
        assert.equal(second.claimed, false);
        assert.equal(second.record.state, 'in_progress');
        assert.equal(second.record.token, 'token-a');

        const result = new TextEncoder().encode('{"id":"ch_1"}');
        assert.equal(
          await store.complete({ key: 'k1', token: 'token-a', result, nowMs: t + 2, expiresAtMs: t + HOUR_MS }),
          true,
        );
        const stored = await store.get('k1', t + 3);
        assert.equal(stored?.state, 'completed');
        assert.deepEqual(bytes(stored?.result), bytes(result));
        assert.equal(stored?.expiresAtMs, t + HOUR_MS);
        assert.equal(stored?.updatedAtMs, t + 2);

        const third = await store.claim(claimInput('k1', { nowMs: t + 4, token: 'token-c' }));
        assert.equal(third.claimed, false);
        assert.equal(third.record.state, 'completed');
        assert.deepEqual(bytes(third.record.result), bytes(result));
        assert.equal(
          await store.complete({ key: 'k1', token: 'token-a', result, nowMs: t + 5, expiresAtMs: t + HOUR_MS }),
          false,
        );
      },
    );

    scenario('release', 'a released key can be claimed again from scratch', async (store) => {
      const t = Date.now();
      await store.claim(claimInput('k', { nowMs: t, token: 'a' }));
      assert.equal(await store.release('k', 'a'), true);
      assert.equal(await store.get('k'), null);
      assert.equal(await store.release('k', 'a'), false);
      const again = await store.claim(claimInput('k', { nowMs: t + 1, token: 'b' }));
      assert.equal(again.claimed, true);
      assert.equal(again.record.attempts, 1);
      assert.equal(again.record.token, 'b');
    });

    scenario('mismatch', 'another fingerprint never claims the key, not even after its lease ends', async (store) => {
      const t = Date.now();
      await store.claim(claimInput('k', { nowMs: t, token: 'a', fingerprint: 'fp-1', leaseMs: 1000 }));
      const during = await store.claim(claimInput('k', { nowMs: t + 1, token: 'b', fingerprint: 'fp-2' }));
      assert.equal(during.claimed, false);
      assert.equal(during.record.fingerprint, 'fp-1');
      const after = await store.claim(claimInput('k', { nowMs: t + 5000, token: 'c', fingerprint: 'fp-2' }));
      assert.equal(after.claimed, false);
      assert.equal(after.record.token, 'a');
      assert.equal(after.record.fingerprint, 'fp-1');
    });

    scenario('isolation', 'keys that share a prefix or differ in case are separate records', async (store) => {
      const t = Date.now();
      for (const key of ['abc', 'abcd', 'ABC', 'ab']) {
        const outcome = await store.claim(claimInput(key, { nowMs: t, token: `t-${key}` }));
        assert.equal(outcome.claimed, true, `claim of ${key}`);
      }
      assert.equal(
        await store.complete({
          key: 'abc',
          token: 't-abc',
          result: new Uint8Array([1]),
          nowMs: t,
          expiresAtMs: t + HOUR_MS,
        }),
        true,
      );
      assert.equal((await store.get('abcd'))?.state, 'in_progress');
      assert.equal((await store.get('ABC'))?.token, 't-ABC');
    });

    scenario(
      'takeover',
      'after the lease ends one caller takes over; the old holder can no longer complete',
      async (store) => {
        const t = Date.now();
        await store.claim(claimInput('k', { nowMs: t, token: 'old', leaseMs: 1000 }));
        const early = await store.claim(claimInput('k', { nowMs: t + 999, token: 'early' }));
        assert.equal(early.claimed, false);
        const late = await store.claim(claimInput('k', { nowMs: t + 1000, token: 'new', leaseMs: 1000 }));
        assert.equal(late.claimed, true);
        assert.equal(late.claimed && late.takeover, true);
        assert.equal(late.record.attempts, 2);
        assert.equal(late.record.createdAtMs, t);
        assert.equal(late.record.leaseExpiresAtMs, t + 2000);
        const result = new Uint8Array([7]);
        assert.equal(
          await store.complete({ key: 'k', token: 'old', result, nowMs: t + 1001, expiresAtMs: t + HOUR_MS }),
          false,
        );
        assert.equal(
          await store.complete({ key: 'k', token: 'new', result, nowMs: t + 1002, expiresAtMs: t + HOUR_MS }),
          true,
        );
        assert.equal((await store.get('k'))?.state, 'completed');
      },
    );

    scenario(
      'staleToken',
      'complete, release and extend are refused with a stale token and leave the record untouched',
      async (store) => {
        const t = Date.now();
        await store.claim(claimInput('k', { nowMs: t, token: 'old', leaseMs: 100 }));
        await store.claim(claimInput('k', { nowMs: t + 100, token: 'new', leaseMs: 1000 }));
        assert.equal(
          await store.extend({
            key: 'k',
            token: 'old',
            nowMs: t + 101,
            leaseExpiresAtMs: t + 99_999,
            expiresAtMs: t + HOUR_MS,
          }),
          false,
        );
        assert.equal(await store.release('k', 'old'), false);
        assert.equal(
          await store.complete({
            key: 'k',
            token: 'old',
            result: new Uint8Array([1]),
            nowMs: t + 102,
            expiresAtMs: t + HOUR_MS,
          }),
          false,
        );
        const record = await store.get('k');
        assert.equal(record?.token, 'new');
        assert.equal(record?.state, 'in_progress');
        assert.equal(record?.leaseExpiresAtMs, t + 1100);

        assert.equal(
          await store.extend({
            key: 'k',
            token: 'new',
            nowMs: t + 200,
            leaseExpiresAtMs: t + 5000,
            expiresAtMs: t + HOUR_MS,
          }),
          true,
        );
        assert.equal((await store.get('k'))?.leaseExpiresAtMs, t + 5000);
        await store.complete({
          key: 'k',
          token: 'new',
          result: new Uint8Array([2]),
          nowMs: t + 300,
          expiresAtMs: t + HOUR_MS,
        });
        // A completed record is final: even its own token can no longer extend or release it.
        assert.equal(
          await store.extend({
            key: 'k',
            token: 'new',
            nowMs: t + 301,
            leaseExpiresAtMs: t + 9000,
            expiresAtMs: t + HOUR_MS,
          }),
          false,
        );
        assert.equal(await store.release('k', 'new'), false);
        assert.equal((await store.get('k'))?.state, 'completed');
      },
    );

    scenario(
      'extendRetention',
      'an extended lease keeps its record past the retention it was claimed with; no rival claims it',
      extendKeepsRetention,
    );

    scenario(
      'lostSignal',
      'a holder whose completion is refused (heartbeat off) sees LEASE_LOST and its signal aborted',
      lostCompletionAbortsSignal,
    );

    scenario('retention', 'an expired record is hidden, replaced by a fresh claim, and swept', async (store) => {
      const t = Date.now();
      const expiresAtMs = t + 60_000;
      await store.claim(claimInput('k', { nowMs: t, token: 'a' }));
      await store.complete({ key: 'k', token: 'a', result: new Uint8Array([1]), nowMs: t, expiresAtMs });
      assert.equal((await store.get('k', expiresAtMs - 1))?.state, 'completed');
      assert.equal(await store.get('k', expiresAtMs), null);
      const fresh = await store.claim(claimInput('k', { nowMs: expiresAtMs, token: 'b', fingerprint: 'other' }));
      assert.equal(fresh.claimed, true);
      assert.equal(fresh.claimed && fresh.takeover, false);
      assert.equal(fresh.record.attempts, 1);
      assert.equal(fresh.record.createdAtMs, expiresAtMs);

      for (let i = 0; i < 5; i++) {
        await store.claim(claimInput(`short-${i}`, { nowMs: t, token: 's', expiresAtMs: t + 60_000 }));
      }
      for (let i = 0; i < 3; i++) {
        await store.claim(claimInput(`long-${i}`, { nowMs: t, token: 'l', expiresAtMs: t + 10 * HOUR_MS }));
      }
      assert.equal(await store.sweep(t + 59_999), 0);
      const firstSweep = await store.sweep(t + 60_000, 2);
      assert.equal(firstSweep, 2);
      assert.equal(await store.sweep(t + 60_000), 3);
      const left = await listAll(store);
      assert.deepEqual(left.sort(), ['k', 'long-0', 'long-1', 'long-2']);
    });

    scenario('binary', 'every byte value and a 1 MiB result round-trip exactly', async (store) => {
      const t = Date.now();
      const everyByte = new Uint8Array(512);
      for (let i = 0; i < everyByte.length; i++) everyByte[i] = i % 256;
      const large = new Uint8Array(randomBytes(1024 * 1024));
      for (const [key, result] of [
        ['every-byte', everyByte],
        ['large', large],
        ['empty', new Uint8Array(0)],
      ] as const) {
        await store.claim(claimInput(key, { nowMs: t, token: 'a' }));
        assert.equal(await store.complete({ key, token: 'a', result, nowMs: t, expiresAtMs: t + HOUR_MS }), true);
        const back = await store.get(key);
        assert.ok(back?.result instanceof Uint8Array, `${key} comes back as bytes`);
        assert.equal(back.result.length, result.length, `${key} length`);
        assert.ok(Buffer.from(back.result).equals(Buffer.from(result)), `${key} bytes`);
      }
    });

    scenario('list', 'pages through every record once and filters by state', async (store) => {
      const t = Date.now();
      const keys = Array.from({ length: 25 }, (_, i) => `key-${String(i).padStart(2, '0')}`);
      for (const key of keys) await store.claim(claimInput(key, { nowMs: t, token: 'a' }));
      for (const key of keys.slice(0, 5)) {
        await store.complete({ key, token: 'a', result: new Uint8Array([1]), nowMs: t, expiresAtMs: t + HOUR_MS });
      }
      assert.deepEqual((await listAll(store, { limit: 10 })).sort(), keys);
      assert.deepEqual((await listAll(store, { state: 'completed', limit: 2 })).sort(), keys.slice(0, 5));
      const firstPage = await store.list({ limit: 10 });
      assert.ok(firstPage.records.length <= 10);
      assert.notEqual(firstPage.nextCursor, undefined);
    });

    scenario('remove', 'delete removes a record whatever its state, once', async (store) => {
      const t = Date.now();
      await store.claim(claimInput('k', { nowMs: t, token: 'a' }));
      assert.equal(await store.delete('k'), true);
      assert.equal(await store.delete('k'), false);
      assert.equal(await store.get('k'), null);
      assert.equal((await store.claim(claimInput('k', { nowMs: t, token: 'b' }))).claimed, true);
    });

    const concurrent = options.concurrentClaims ?? 200;
    scenario('concurrent', `${concurrent} concurrent claims of one key have exactly one winner`, async (store) => {
      const t = Date.now();
      const outcomes = await Promise.all(
        Array.from({ length: concurrent }, (_, i) => store.claim(claimInput('hot', { nowMs: t, token: `t-${i}` }))),
      );
      const winners = outcomes.filter((o) => o.claimed);
      assert.equal(winners.length, 1);
      const winnerToken = winners[0]?.record.token;
      for (const outcome of outcomes) assert.equal(outcome.record.token, winnerToken);
      assert.equal((await store.get('hot'))?.token, winnerToken);
    });

    const processes = options.processes ?? 4;
    const perProcess = options.claimsPerProcess ?? 50;
    scenario(
      'processes',
      `${processes} processes racing for ${perProcess} keys: each key has exactly one winner`,
      async (store, namespace) => {
        await raceAcrossProcesses(store, jobBase(options, namespace), processes, perProcess);
      },
    );

    scenario(
      'crash',
      'a holder killed mid-lease blocks the key until its lease ends, then one caller takes over',
      async (store, namespace) => {
        await killHolderMidLease(store, jobBase(options, namespace));
      },
    );

    scenario(
      'ping',
      'ping, when the store has one, resolves on a working store and refuses after close',
      async (store) => {
        if (store.ping === undefined) return;
        await store.ping();
        await store.ping();
        await store.close();
        await assert.rejects(store.ping(), (error: unknown) => {
          assert.ok(isIdempotencyError(error, ErrorCode.STORE_CLOSED), `expected STORE_CLOSED, got ${String(error)}`);
          return true;
        });
      },
    );

    scenario('close', 'close can be called twice, and use after close is refused with STORE_CLOSED', async (store) => {
      await store.close();
      await store.close();
      await assert.rejects(store.claim(claimInput('k', { nowMs: Date.now(), token: 'a' })), (error: unknown) => {
        assert.ok(isIdempotencyError(error, ErrorCode.STORE_CLOSED), `expected STORE_CLOSED, got ${String(error)}`);
        return true;
      });
    });
  });
}
