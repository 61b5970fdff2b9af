/**
 * The work has run when `complete` is called: a store that fails then is asked again while the
 * lease holds, so an outage shorter than the lease loses no result and runs nothing twice.
 * A private redis-server (with an append-only file, so a restart keeps the claim) is stopped
 * and started by the test; nothing here waits on a clock, only on the store's failures.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Engine } from '../../src/core/engine.js';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import { idempotent } from '../../src/core/idempotent.js';
import { OutcomeKind } from '../../src/core/outcome.js';
import type { IdemEvent } from '../../src/core/telemetry.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { type PrivateServer, startPrivateRedis } from '../stores/private-server.js';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('complete while the store is down', () => {
  let redis: PrivateServer;
  before(async () => {
    redis = await startPrivateRedis({ persistent: true });
  });
  after(async () => {
    await redis.dispose();
  });

  it('keeps asking while the lease holds, and stores the result once the store is back', async () => {
    let restarted: Promise<void> | undefined;
    const onEvent = (event: IdemEvent) => {
      // The first failed try: bring the store back while complete keeps asking.
      if (event.type === 'store_error' && restarted === undefined) restarted = redis.start();
    };
    const store = new RedisStore({ url: redis.url, prefix: 'idem_complete_retry:' });
    const engine = new Engine({ store, leaseMs: 120_000, heartbeatMs: 0, storeTimeoutMs: 2_000, onEvent });
    try {
      const decision = await engine.begin({ key: 'k-1', fingerprint: 'f' });
      assert.equal(decision.kind, 'run');
      if (decision.kind !== 'run') return;
      await redis.stop();
      assert.equal(await decision.lease.complete({ kind: OutcomeKind.value, payload: bytes('paid') }), true);
      assert.ok(restarted, 'a try failed first');
      await restarted;
      const again = await engine.begin({ key: 'k-1', fingerprint: 'f' });
      assert.equal(again.kind, 'replay');
      if (again.kind === 'replay') assert.equal(new TextDecoder().decode(again.outcome.payload), 'paid');
    } finally {
      await store.close();
    }
  });

  it('runs a wrapped function once when the store fails between its claim and its result', async () => {
    const store = new RedisStore({ url: redis.url, prefix: 'idem_complete_retry_fn:' });
    let restarted: Promise<void> | undefined;
    let runs = 0;
    const charge = idempotent(
      async (order: string) => {
        runs += 1;
        await redis.stop();
        return { order, charge: `ch_${runs}` };
      },
      {
        store,
        name: 'charge',
        leaseMs: 120_000,
        storeTimeoutMs: 2_000,
        onEvent: (event) => {
          if (event.type === 'store_error' && restarted === undefined) restarted = redis.start();
        },
      },
    );
    try {
      assert.deepEqual(await charge('o-1'), { order: 'o-1', charge: 'ch_1' });
      await restarted;
      assert.deepEqual(await charge('o-1'), { order: 'o-1', charge: 'ch_1' });
      assert.equal(runs, 1);
    } finally {
      await store.close();
    }
  });

  it('gives up with STORE_UNAVAILABLE once the lease has run out, leaving the key to a retry', async () => {
    const store = new RedisStore({ url: redis.url, prefix: 'idem_complete_retry_out:' });
    const errors: IdemEvent[] = [];
    const engine = new Engine({
      store,
      leaseMs: 1_500,
      heartbeatMs: 0,
      retentionMs: 60_000,
      storeTimeoutMs: 500,
      onEvent: (event) => {
        if (event.type === 'store_error') errors.push(event);
      },
    });
    try {
      const decision = await engine.begin({ key: 'k-2', fingerprint: 'f' });
      assert.equal(decision.kind, 'run');
      if (decision.kind !== 'run') return;
      await redis.stop();
      await assert.rejects(decision.lease.complete({ kind: OutcomeKind.value, payload: bytes('paid') }), (error) =>
        isIdempotencyError(error, ErrorCode.STORE_UNAVAILABLE),
      );
      assert.ok(errors.length >= 2, `asked more than once: ${errors.length}`);
    } finally {
      await redis.start();
      await store.close();
    }
  });
});
