import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import { idempotencyContext, idempotent } from '../../src/core/idempotent.js';
import type { IdemEvent, TelemetryMeter } from '../../src/core/telemetry.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { PostgresStore } from '../../src/stores/postgres/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { Workflows } from '../../src/workflow/index.js';
import { freePort, type PrivateServer, startPrivateRedis } from '../stores/private-server.js';

const withCode = (code: ErrorCode, pattern?: RegExp) => (error: unknown) => {
  assert.ok(isIdempotencyError(error, code), `expected ${code}, got ${String(error)}`);
  if (pattern) assert.match(error.message, pattern);
  return true;
};

/** A meter that keeps what its counters were given, by counter name. */
function recordingMeter(): { meter: TelemetryMeter; added: Map<string, Record<string, unknown>[]> } {
  const added = new Map<string, Record<string, unknown>[]>();
  const meter: TelemetryMeter = {
    createCounter: (name) => ({
      add: (_value, attributes) => added.set(name, [...(added.get(name) ?? []), { ...attributes }]),
    }),
    createHistogram: () => ({ record: () => {} }),
  };
  return { meter, added };
}

/** A PostgreSQL store pointed at a port nothing listens on: every call is refused. */
async function downPostgres(): Promise<PostgresStore> {
  return new PostgresStore({ url: `postgres://idem:idem@127.0.0.1:${await freePort()}/test`, table: 'idem_down' });
}

describe('idempotent(fn) when the store is down', () => {
  it('fails closed by default: throws STORE_UNAVAILABLE and does not run the function', async () => {
    for (const onStoreUnavailable of [undefined, 'reject'] as const) {
      const store = await downPostgres();
      let runs = 0;
      const charge = idempotent(async (id: string) => `ch_${id}_${++runs}`, {
        store,
        name: 'charge',
        storeTimeoutMs: 2000,
        ...(onStoreUnavailable === undefined ? {} : { onStoreUnavailable }),
      });
      await assert.rejects(charge('order-1'), withCode(ErrorCode.STORE_UNAVAILABLE, /Nothing was run/));
      assert.equal(runs, 0);
      await store.close();
    }
  });

  it("refuses an onStoreUnavailable it does not know with INVALID_OPTIONS naming 'reject' and 'run-unprotected'", () => {
    assert.throws(
      () =>
        idempotent(async () => 1, {
          store: new MemoryStore(),
          name: 'x',
          onStoreUnavailable: 'open' as unknown as 'reject',
        }),
      withCode(ErrorCode.INVALID_OPTIONS, /onStoreUnavailable must be 'reject'.*or 'run-unprotected'.*got "open"/),
    );
  });

  it('refuses onStoreUnavailable on workflows: a durable run cannot go on without its journal', () => {
    const options = { store: new MemoryStore(), onStoreUnavailable: 'run-unprotected' };
    assert.throws(
      () => new Workflows(options as ConstructorParameters<typeof Workflows>[0]),
      withCode(ErrorCode.INVALID_OPTIONS, /workflows always fail closed/),
    );
  });

  describe('with a private redis-server that goes down and comes back', () => {
    let redis: PrivateServer;
    before(async () => {
      redis = await startPrivateRedis();
    });
    after(async () => {
      await redis.dispose();
    });

    it('runs unprotected on every call while it is down, reports it, and protects the key again once it is back', async () => {
      const store = new RedisStore({ url: redis.url, prefix: 'idem_faults_fn:' });
      const events: IdemEvent[] = [];
      const { meter, added } = recordingMeter();
      const seen: { unprotected: boolean; attempts: number }[] = [];
      let runs = 0;
      const charge = idempotent(
        async (id: string) => {
          const claim = idempotencyContext();
          seen.push({ unprotected: claim?.unprotected ?? false, attempts: claim?.attempts ?? -1 });
          return `ch_${id}_${++runs}`;
        },
        {
          store,
          name: 'charge',
          storeTimeoutMs: 2000,
          onStoreUnavailable: 'run-unprotected',
          telemetry: { meter },
          onEvent: (e) => events.push(e),
        },
      );
      try {
        await untilStoreAnswers(store);
        assert.equal(await charge('order-1'), 'ch_order-1_1');
        assert.equal(await charge('order-1'), 'ch_order-1_1', 'protected while the store is up');
        await redis.stop();

        assert.equal(await charge('order-2'), 'ch_order-2_2');
        assert.equal(await charge('order-2'), 'ch_order-2_3', 'no record while unprotected: a retry runs again');
        assert.deepEqual(seen.slice(-2), [
          { unprotected: true, attempts: 0 },
          { unprotected: true, attempts: 0 },
        ]);
        const unprotected = events.filter((e) => e.type === 'unprotected_run');
        assert.equal(unprotected.length, 2);
        for (const event of unprotected) {
          assert.equal(event.face, 'function');
          assert.equal(event.store, 'redis');
          assert.ok(event.reason === 'store_error' || event.reason === 'timeout', event.reason);
          assert.ok(!JSON.stringify(event).includes('order-2'), 'no key in the event');
        }
        const counted = added.get('idem.unprotected_runs') ?? [];
        assert.equal(counted.length, 2);
        assert.equal(counted[0]?.['idem.face'], 'function');

        await redis.start();
        await untilStoreAnswers(store);
        const first = await charge('order-3');
        const runsBefore = runs;
        assert.equal(await charge('order-3'), first, 'protected again: the retry replays');
        assert.equal(runs, runsBefore);
        assert.equal(added.get('idem.unprotected_runs')?.length, 2, 'no unprotected run once the store is back');
      } finally {
        await store.close();
      }
    });
  });
});

/** Resolves once `store` answers again (its client reconnects a moment after the server is back); fails after 10 s. */
async function untilStoreAnswers(store: RedisStore): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await store.get('probe', Date.now());
      return;
    } catch (error) {
      if (attempt >= 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
