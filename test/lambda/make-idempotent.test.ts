import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import { storeKeyOf } from '../../src/core/keys.js';
import type { IdempotencyRecord, Store } from '../../src/core/store.js';
import { type LambdaIdempotencyOptions, makeIdempotent } from '../../src/lambda/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { createStore, dropStore } from '../stores/dynamodb.factory.js';
import { type LambdaContext, lambdaContext } from './lambda-context.js';

interface OrderEvent {
  orderId: string;
  amount: number;
}

interface Charge {
  charged: number;
  by: string;
}

const FUNCTION = 'charge-orders';

/** A promise and the function that resolves it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

function isCode(code: ErrorCode) {
  return (error: unknown) => {
    assert.ok(isIdempotencyError(error, code), `expected ${code}, got ${String(error)}`);
    return true;
  };
}

/** Polls `store` until `until` holds for the record of `key` (a heartbeat runs on real timers). */
async function recordWhen(
  store: Store,
  key: string,
  until: (record: IdempotencyRecord | null) => boolean,
): Promise<IdempotencyRecord | null> {
  for (let round = 0; round < 500; round++) {
    const record = await store.get(key);
    if (until(record)) return record;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`the record of ${key} never reached the expected state`);
}

const stores: [string, () => Promise<{ store: Store; drop: () => Promise<void> }>][] = [
  ['memory', async () => ({ store: new MemoryStore(), drop: async () => {} })],
  [
    'dynamodb',
    async () => {
      const namespace = `lambda_${randomBytes(5).toString('hex')}`;
      return { store: await createStore(namespace), drop: () => dropStore(namespace) };
    },
  ],
];

for (const [storeName, open] of stores) {
  describe(`makeIdempotent on the ${storeName} store`, () => {
    let store: Store;
    let drop: () => Promise<void>;
    const start = Date.now();
    let nowMs = start;
    const now = () => nowMs;
    before(async () => {
      ({ store, drop } = await open());
    });
    after(async () => {
      await store.close();
      await drop();
    });

    /** A fresh order, so that tests never share a key. */
    const order = (): OrderEvent => ({ orderId: `o-${randomBytes(4).toString('hex')}`, amount: 500 });
    const recordKey = (event: OrderEvent, functionName = FUNCTION) => storeKeyOf('charge', functionName, event.orderId);
    const context = (remainingMs: number, functionName = FUNCTION) => lambdaContext({ now, remainingMs, functionName });

    /** A handler that counts its runs and, when given a gate, waits at it before it returns. */
    function charging(options: Partial<LambdaIdempotencyOptions<OrderEvent, LambdaContext, Charge>> = {}) {
      const runs: { started: Promise<void>; requestId: string }[] = [];
      let waitFor: Promise<void> | undefined;
      let started = gate();
      const handler = makeIdempotent(
        async (event: OrderEvent, ctx: LambdaContext): Promise<Charge> => {
          runs.push({ started: started.opened, requestId: ctx.awsRequestId });
          started.open();
          await waitFor;
          return { charged: event.amount, by: ctx.awsRequestId };
        },
        { store, name: 'charge', key: (event) => event.orderId, now, heartbeatMs: 0, ...options },
      );
      return {
        handler,
        runs,
        /** Makes the next runs wait for `until`; resolves `started` when the next run begins. */
        hold(until: Promise<void>) {
          waitFor = until;
          started = gate();
          return started.opened;
        },
      };
    }

    it('replays the stored result for a repeated event and runs the handler once', async () => {
      const { handler, runs } = charging();
      const event = order();
      const first = await handler(event, context(60_000));
      const again = await handler({ ...event }, context(60_000));
      assert.deepEqual(again, first);
      assert.equal(runs.length, 1);
      assert.equal((await store.get(recordKey(event)))?.state, 'completed');
    });

    it('answers a concurrent duplicate with IN_PROGRESS while the first invocation runs', async () => {
      const { handler, runs, hold } = charging();
      const event = order();
      const release = gate();
      const started = hold(release.opened);
      const first = handler(event, context(60_000));
      await started;
      await assert.rejects(handler(event, context(60_000)), (error: unknown) => {
        assert.ok(isIdempotencyError(error, ErrorCode.IN_PROGRESS), String(error));
        assert.ok((error.retryAfterMs ?? 0) > 0);
        return true;
      });
      release.open();
      const result = await first;
      assert.deepEqual(await handler(event, context(60_000)), result);
      assert.equal(runs.length, 1);
    });

    it('ends the lease of an invocation with less time left than leaseMs at its deadline, so the retry takes over then', async () => {
      const { handler, runs, hold } = charging({ leaseMs: 30_000 });
      const event = order();
      nowMs = start;
      const stuck = gate();
      const started = hold(stuck.opened);
      const timingOut = handler(event, context(500));
      await started;
      assert.equal((await store.get(recordKey(event)))?.leaseExpiresAtMs, start + 500);

      nowMs = start + 499;
      await assert.rejects(handler(event, context(60_000)), isCode(ErrorCode.IN_PROGRESS));
      nowMs = start + 500;
      hold(Promise.resolve());
      const retried = await handler(event, context(60_000));
      assert.equal(runs.length, 2);
      assert.equal(retried.by, runs[1]?.requestId);
      assert.equal((await store.get(recordKey(event)))?.attempts, 2);

      // Had Lambda not stopped it, the first invocation's late result would be refused.
      stuck.open();
      await assert.rejects(timingOut, isCode(ErrorCode.LEASE_LOST));
      assert.deepEqual(await handler(event, context(60_000)), retried);
    });

    it('keeps leaseMs when the invocation has longer left, and the heartbeat never extends it past the deadline', async () => {
      const { handler, hold } = charging({ leaseMs: 1000, heartbeatMs: 20 });
      const event = order();
      nowMs = start;
      const running = gate();
      const started = hold(running.opened);
      const invocation = handler(event, context(1500));
      await started;
      assert.equal((await store.get(recordKey(event)))?.leaseExpiresAtMs, start + 1000);
      nowMs = start + 900;
      const extended = await recordWhen(store, recordKey(event), (record) => record?.updatedAtMs === start + 900);
      assert.equal(extended?.leaseExpiresAtMs, start + 1500, 'the deadline, not now + leaseMs (start + 1900)');
      running.open();
      await invocation;
      nowMs = start;
    });

    it('keys by the whole event by default, in canonical form, within the function', async () => {
      let runs = 0;
      const handler = makeIdempotent(
        async (event: Record<string, unknown>) => {
          runs += 1;
          return { seen: event };
        },
        { store, now },
      );
      const id = randomBytes(4).toString('hex');
      await handler({ id, a: 1, b: { c: 2, d: 3 } }, context(60_000));
      await handler({ b: { d: 3, c: 2 }, a: 1, id }, context(60_000));
      assert.equal(runs, 1, 'the same event with its keys in another order replays');
      await handler({ id, a: 1, b: { c: 2, d: 4 } }, context(60_000));
      assert.equal(runs, 2, 'another event runs');
      await handler({ id, a: 1, b: { c: 2, d: 3 } }, context(60_000, 'another-function'));
      assert.equal(runs, 3, 'another function keeps its own keys');
    });

    it('releases the key when the handler throws, so the retry runs again', async () => {
      let runs = 0;
      const handler = makeIdempotent(
        async (event: OrderEvent) => {
          runs += 1;
          if (runs === 1) throw new Error('card network down');
          return { charged: event.amount };
        },
        { store, name: 'charge', key: (event) => event.orderId, now },
      );
      const event = order();
      await assert.rejects(handler(event, context(60_000)), /card network down/);
      assert.equal(await store.get(recordKey(event)), null);
      assert.deepEqual(await handler(event, context(60_000)), { charged: 500 });
      assert.equal(runs, 2);
    });
  });
}

describe('makeIdempotent', () => {
  it('refuses a missing handler or store with INVALID_OPTIONS', () => {
    const store = new MemoryStore();
    assert.throws(
      () => makeIdempotent(undefined as unknown as () => Promise<void>, { store }),
      isCode(ErrorCode.INVALID_OPTIONS),
    );
    assert.throws(
      () => makeIdempotent(async () => 1, {} as LambdaIdempotencyOptions<unknown, LambdaContext, number>),
      (error: unknown) => isCode(ErrorCode.INVALID_OPTIONS)(error) && /needs `store`/.test(String(error)),
    );
  });

  it('gives the lease leaseMs when the context cannot say how long is left (a local call)', async () => {
    const store = new MemoryStore();
    const nowMs = Date.now();
    const started = gate();
    const done = gate();
    const handler = makeIdempotent(
      async (event: { id: string }) => {
        started.open();
        await done.opened;
        return event.id;
      },
      { store, key: (event) => event.id, leaseMs: 7000, heartbeatMs: 0, now: () => nowMs },
    );
    const running = handler({ id: 'k' }, {});
    await started.opened;
    const [record] = (await store.list()).records;
    assert.equal(record?.leaseExpiresAtMs, nowMs + 7000);
    done.open();
    assert.equal(await running, 'k');
  });

  it('records a result over the DynamoDB item limit as too large rather than failing after the handler ran', async () => {
    const namespace = `lambda_${randomBytes(5).toString('hex')}`;
    const store = await createStore(namespace);
    let runs = 0;
    const big = 'x'.repeat(500_000);
    const handler = makeIdempotent(
      async (_event: { id: string }) => {
        runs += 1;
        return big;
      },
      { store, key: (event) => event.id },
    );
    const context = lambdaContext({ now: Date.now, remainingMs: 60_000 });
    try {
      assert.equal(await handler({ id: 'big' }, context), big);
      await assert.rejects(handler({ id: 'big' }, context), isCode(ErrorCode.RESULT_TOO_LARGE));
      assert.equal(runs, 1);
    } finally {
      await store.close();
      await dropStore(namespace);
    }
  });
});
