import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { idempotent } from '../../src/core/idempotent.js';
import type { Store } from '../../src/core/store.js';
import type { StoredError } from '../../src/core/stored-error.js';
import { MemoryStore } from '../../src/stores/memory/index.js';

/** A declined card: the outcome of the operation, stored and thrown again to every retry. */
class DeclinedError extends Error {
  override name = 'DeclinedError';
  readonly code = 'card_declined';
  // A constructor with arguments the replay cannot know: it must not be called to revive.
  constructor(
    readonly declineCode: string,
    options?: ErrorOptions,
  ) {
    super(`the card was declined (${declineCode})`, options);
  }
}

class GatewayError extends Error {
  override name = 'GatewayError';
  status = 402;
}

type Replayed = Error & { code?: string; declineCode?: string; idempotentReplay?: boolean; status?: number };

/** An operation that always fails with `error`, stored as its outcome; counts its runs. */
function payWith(store: Store, error: () => Error, more: Partial<Parameters<typeof idempotent>[1]> = {}) {
  const runs = { count: 0 };
  const pay = idempotent(
    async (_id: string) => {
      runs.count += 1;
      throw error();
    },
    { store, name: 'pay', key: (id) => id, storeErrors: () => true, ...more },
  );
  return { pay, runs };
}

describe('stored errors replayed by idempotent()', () => {
  it('come back as their own class when it is listed in `errors`, without running its constructor', async () => {
    const { pay, runs } = payWith(new MemoryStore(), () => new DeclinedError('insufficient_funds'), {
      errors: [GatewayError, DeclinedError],
    });
    await assert.rejects(pay('order-1'), DeclinedError);
    await assert.rejects(pay('order-1'), (error: Replayed) => {
      assert.equal(error.idempotentReplay, true);
      assert.ok(error instanceof DeclinedError, 'instanceof holds on the retry');
      assert.ok(error instanceof Error);
      assert.equal(error.name, 'DeclinedError');
      assert.equal(error.message, 'the card was declined (insufficient_funds)');
      assert.equal(error.code, 'card_declined');
      assert.equal(error.declineCode, 'insufficient_funds');
      assert.match(String(error.stack), /DeclinedError: the card was declined/);
      return true;
    });
    assert.equal(runs.count, 1);
  });

  it('are matched by name at replay time, so a wrapper that lists the class revives what another stored', async () => {
    const store = new MemoryStore();
    const { pay } = payWith(store, () => new DeclinedError('expired_card'));
    await assert.rejects(pay('order-2'), DeclinedError);
    const { pay: later, runs } = payWith(store, () => new Error('never runs'), { errors: [DeclinedError] });
    await assert.rejects(later('order-2'), DeclinedError);
    assert.equal(runs.count, 0);
  });

  it('keep name, message, code and fields without `errors`, so a code check works on the retry', async () => {
    const { pay } = payWith(new MemoryStore(), () => new DeclinedError('stolen_card'));
    await assert.rejects(pay('order-3'), DeclinedError);
    await assert.rejects(pay('order-3'), (error: Replayed) => {
      assert.equal(error instanceof DeclinedError, false, 'without `errors` the class is not known');
      assert.ok(error instanceof Error);
      assert.equal(error.code, 'card_declined');
      assert.equal(error.name, 'DeclinedError');
      assert.equal(error.message, 'the card was declined (stolen_card)');
      assert.equal(error.declineCode, 'stolen_card');
      assert.equal(error.idempotentReplay, true);
      return true;
    });
  });

  it('keep their cause chain, each cause revived by `errors` too', async () => {
    const chain = () => {
      const network = Object.assign(new Error('socket hang up', { cause: 'ECONNRESET' }), { code: 'ECONNRESET' });
      return new DeclinedError('do_not_honor', {
        cause: Object.assign(new GatewayError('402 from bank'), { cause: network }),
      });
    };
    const { pay } = payWith(new MemoryStore(), chain, { errors: [DeclinedError, GatewayError] });
    await assert.rejects(pay('order-4'), DeclinedError);
    await assert.rejects(pay('order-4'), (error: Replayed) => {
      const gateway = error.cause as Replayed;
      assert.ok(gateway instanceof GatewayError);
      assert.equal(gateway.message, '402 from bank');
      assert.equal(gateway.status, 402);
      const network = gateway.cause as Replayed;
      assert.ok(network instanceof Error);
      assert.equal(network.message, 'socket hang up');
      assert.equal(network.code, 'ECONNRESET');
      assert.equal(network.cause, 'ECONNRESET');
      return true;
    });
  });

  it('go through `reviveError` first, which may leave an error to `errors` by returning undefined', async () => {
    const seen: StoredError[] = [];
    class Mapped extends Error {}
    const reviveError = (stored: StoredError) => {
      seen.push(stored);
      return stored.name === 'GatewayError' ? new Mapped(`mapped: ${stored.message}`) : undefined;
    };
    const store = new MemoryStore();
    const gateway = payWith(store, () => new GatewayError('402'), { reviveError });
    await assert.rejects(gateway.pay('order-5'), GatewayError);
    await assert.rejects(gateway.pay('order-5'), (error: Replayed) => {
      assert.ok(error instanceof Mapped);
      assert.equal(error.message, 'mapped: 402');
      assert.equal(error.idempotentReplay, true);
      return true;
    });
    assert.deepEqual(seen, [{ name: 'GatewayError', message: '402', status: 402 }]);

    const declined = payWith(store, () => new DeclinedError('lost_card'), { reviveError, errors: [DeclinedError] });
    await assert.rejects(declined.pay('order-6'), DeclinedError);
    await assert.rejects(declined.pay('order-6'), DeclinedError);
  });

  it('refuses `errors` that is not a list of classes, and a `reviveError` that is not a function', () => {
    const store = new MemoryStore();
    assert.throws(() => payWith(store, () => new Error(), { errors: DeclinedError as never }), /list of error classes/);
    assert.throws(
      () => payWith(store, () => new Error(), { errors: ['DeclinedError'] as never }),
      /list of error classes/,
    );
    assert.throws(() => payWith(store, () => new Error(), { reviveError: 'x' as never }), /must be a function/);
  });
});
