import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { isIdempotencyError } from '../../src/core/errors.js';
import type { AdminStore } from '../../src/core/store.js';
import { consumeOnce, Inbox } from '../../src/messaging/index.js';

type Factory = { createStore(ns: string): Promise<AdminStore>; dropStore?(ns: string): Promise<void> };

for (const kind of ['memory', 'sqlite', 'postgres', 'redis'] as const) {
  describe(`inbox on ${kind}`, () => {
    const namespace = `inbox_${kind}_${randomBytes(4).toString('hex')}`;
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

    it('runs the handler once and answers a redelivery as a duplicate with the first value', async () => {
      const inbox = new Inbox({ store, consumer: 'billing' });
      let runs = 0;
      const handler = async () => ++runs;
      assert.deepEqual(await inbox.consume({ id: 'm-1' }, handler), { kind: 'processed', value: 1 });
      assert.deepEqual(await inbox.consume({ id: 'm-1' }, handler), { kind: 'duplicate', value: 1 });
      assert.equal(runs, 1);
    });

    it('keeps two consumers of one message apart: each processes it once', async () => {
      const seen: string[] = [];
      for (const consumer of ['a', 'b', 'a', 'b']) {
        await consumeOnce({ store, consumer, id: 'shared', handler: () => seen.push(consumer) });
      }
      assert.deepEqual(seen, ['a', 'b']);
    });

    it('releases the key when the handler throws, so the next delivery runs it again', async () => {
      const inbox = new Inbox({ store, consumer: 'flaky' });
      await assert.rejects(
        inbox.consume({ id: 'm-2' }, () => {
          throw new Error('downstream down');
        }),
        /downstream down/,
      );
      assert.deepEqual(await inbox.consume({ id: 'm-2' }, () => 'ok'), { kind: 'processed', value: 'ok' });
    });

    it('answers in_progress while another consumer holds the message, without running the handler', async () => {
      const inbox = new Inbox({ store, consumer: 'slow' });
      let release: () => void = () => {};
      const first = inbox.consume(
        { id: 'm-3' },
        () => new Promise<string>((resolve) => (release = () => resolve('first'))),
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
      let ran = false;
      const second = await inbox.consume({ id: 'm-3' }, () => {
        ran = true;
      });
      assert.equal(second.kind, 'in_progress');
      assert.equal(ran, false);
      release();
      assert.deepEqual(await first, { kind: 'processed', value: 'first' });
    });

    it('refuses a reused id with another payload as a mismatch', async () => {
      const inbox = new Inbox({ store, consumer: 'strict' });
      await inbox.consume({ id: 'm-4', payload: { amount: 10 } }, () => 'charged');
      let ran = false;
      const outcome = await inbox.consume({ id: 'm-4', payload: { amount: 99 } }, () => {
        ran = true;
      });
      assert.deepEqual(outcome, { kind: 'mismatch' });
      assert.equal(ran, false);
    });

    it('says what to do about a missing id or consumer', async () => {
      const inbox = new Inbox({ store, consumer: 'x' });
      await assert.rejects(
        inbox.consume({ id: '' }, () => 1),
        (e) => isIdempotencyError(e, 'KEY_MISSING'),
      );
      assert.throws(() => new Inbox({ store, consumer: '' }), /consumer must be a name/);
    });
  });
}
