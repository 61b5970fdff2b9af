// The relay's loop over an in-memory outbox (test/messaging/fixtures/memory-outbox.ts): passes,
// retries with backoff, dead letters, stopping, cleanup. What a real outbox adds (row locks across
// processes, commits) is proven on PostgreSQL in outbox-relay-postgres.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isIdempotencyError } from '../../src/core/errors.js';
import type { OutboxPublisher, PendingMessage, PublishResult } from '../../src/messaging/outbox/outbox.js';
import { OutboxRelay, type OutboxRelayOptions } from '../../src/messaging/outbox/relay.js';
import { MemoryOutbox } from './fixtures/memory-outbox.js';

/** A publisher that records what it was handed and answers with `answer`. */
function recorder(answer: (message: PendingMessage) => PublishResult = () => ({ ok: true })) {
  const published: PendingMessage[] = [];
  const publisher: OutboxPublisher = {
    name: 'recorder',
    async publish(messages) {
      published.push(...messages);
      return messages.map(answer);
    },
  };
  return { publisher, published };
}

/** Resolves when `check` holds; fails after 10 s (a liveness bound, not a timing claim). */
async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function relayOf(outbox: MemoryOutbox, publisher: OutboxPublisher, options: Partial<OutboxRelayOptions> = {}) {
  return new OutboxRelay({ outbox, publisher, cleanup: false, ...options });
}

describe('OutboxRelay', () => {
  it('drains every due message once, oldest first, and answers what its passes did in all', async () => {
    const outbox = new MemoryOutbox();
    const ids = Array.from({ length: 250 }, (_, index) => outbox.add({ topic: 't', payload: index }));
    outbox.add({ topic: 't', payload: 'later', notBeforeMs: Date.now() + 60_000 });
    const { publisher, published } = recorder();
    const total = await relayOf(outbox, publisher, { batchSize: 100 }).drain();
    assert.deepEqual(total, { claimed: 250, published: 250, failed: 0, dead: 0 });
    assert.deepEqual(
      published.map((message) => message.id),
      ids,
    );
    assert.deepEqual(await outbox.counts(), { pending: 1, published: 250, dead: 0 });
  });

  it('publishes the messages of one key one per pass, in order, and the loop goes on without waiting pollMs', async () => {
    const outbox = new MemoryOutbox();
    const keyed = Array.from({ length: 5 }, (_, index) => outbox.add({ topic: 't', key: 'order-1', payload: index }));
    const { publisher, published } = recorder();
    const relay = relayOf(outbox, publisher, { pollMs: 600_000 }).start();
    await eventually(() => published.length === 5, 'all five keyed messages published');
    await relay.stop();
    assert.deepEqual(
      published.map((message) => message.id),
      keyed,
    );
  });

  it('retries a failing message with a growing, jittered backoff, then moves it to the dead-letter state', async () => {
    const outbox = new MemoryOutbox();
    const id = outbox.add({ topic: 't', payload: 'x' });
    const { publisher } = recorder(() => ({ ok: false, error: 'broker said no' }));
    const relay = relayOf(outbox, publisher, { maxAttempts: 4, backoff: { baseMs: 1000, maxMs: 3000 } });
    const dueAfter: { lowest: number; highest: number }[] = [];
    for (let attempt = 1; attempt <= 4; attempt++) {
      outbox.row(id).dueAtMs = 0;
      const before = Date.now();
      const result = await relay.runOnce();
      const after = Date.now();
      if (attempt < 4) {
        assert.deepEqual(result, { claimed: 1, published: 0, failed: 1, dead: 0 });
        dueAfter.push({ lowest: outbox.row(id).dueAtMs - after, highest: outbox.row(id).dueAtMs - before });
      } else {
        assert.deepEqual(result, { claimed: 1, published: 0, failed: 0, dead: 1 });
      }
    }
    // base * 2^(n-1), capped at maxMs, of which the relay waits between half and all.
    for (const [index, ceiling] of [1000, 2000, 3000].entries()) {
      const delay = dueAfter[index] ?? { lowest: -1, highest: -1 };
      assert.ok(
        delay.highest >= ceiling / 2 && delay.lowest <= ceiling,
        `attempt ${index + 1}: ${JSON.stringify(delay)}`,
      );
    }
    assert.equal(outbox.row(id).state, 'dead');
    assert.equal(outbox.row(id).attempts, 4);
    assert.equal(outbox.row(id).lastError, 'broker said no');
  });

  it('counts the messages of a publisher that throws as failed, so they still reach the dead-letter state', async () => {
    const outbox = new MemoryOutbox();
    const id = outbox.add({ topic: 't', payload: 'x' });
    const publisher: OutboxPublisher = {
      name: 'broken',
      async publish() {
        throw new Error('socket closed');
      },
    };
    const relay = relayOf(outbox, publisher, { maxAttempts: 2, backoff: { baseMs: 0, maxMs: 0 } });
    assert.deepEqual(await relay.drain(), { claimed: 2, published: 0, failed: 1, dead: 1 });
    assert.equal(outbox.row(id).state, 'dead');
    assert.match(outbox.row(id).lastError, /the publisher threw: socket closed/);
  });

  it('fails the messages a publisher gave no result for, and publishes those it did', async () => {
    const outbox = new MemoryOutbox();
    const [first, second] = [outbox.add({ topic: 't', payload: 1 }), outbox.add({ topic: 't', payload: 2 })];
    const publisher: OutboxPublisher = { name: 'short', publish: async () => [{ ok: true }] };
    assert.deepEqual(await relayOf(outbox, publisher).runOnce(), { claimed: 2, published: 1, failed: 1, dead: 0 });
    assert.equal(outbox.row(first).state, 'published');
    assert.match(outbox.row(second).lastError, /no result for this message/);
  });

  it('goes past a store outage: reports it to onError, backs off, and publishes once the store answers', async () => {
    const outbox = new MemoryOutbox();
    outbox.add({ topic: 't', payload: 'x' });
    outbox.failRelay = 2;
    const errors: unknown[] = [];
    const { publisher, published } = recorder();
    const relay = relayOf(outbox, publisher, {
      pollMs: 10,
      backoff: { baseMs: 10, maxMs: 20 },
      onError: (error) => errors.push(error),
    }).start();
    await eventually(() => published.length === 1, 'the message published after the outage');
    await relay.stop();
    assert.equal(errors.length, 2);
    assert.match(String(errors[0]), /outage/);
  });

  it('never runs two passes at once, however runOnce and the loop are called', async () => {
    const outbox = new MemoryOutbox();
    for (let index = 0; index < 50; index++) outbox.add({ topic: 't', payload: index });
    const slow: OutboxPublisher = {
      name: 'slow',
      async publish(messages) {
        await new Promise((resolve) => setTimeout(resolve, 2));
        return messages.map(() => ({ ok: true }));
      },
    };
    const relay = relayOf(outbox, slow, { batchSize: 3, pollMs: 5 }).start();
    await Promise.all([relay.runOnce(), relay.runOnce(), relay.drain(), relay.runOnce()]);
    await relay.stop();
    assert.equal(outbox.maxConcurrentPasses, 1);
    assert.deepEqual(await outbox.counts(), { pending: 0, published: 50, dead: 0 });
  });

  it('lets the pass in flight commit when stopped, and starts no other', async () => {
    const outbox = new MemoryOutbox();
    const ids = [outbox.add({ topic: 't', payload: 1 }), outbox.add({ topic: 't', payload: 2 })];
    let release = () => {};
    let entered = () => {};
    const inPublish = new Promise<void>((resolve) => (entered = resolve));
    const publisher: OutboxPublisher = {
      name: 'held',
      async publish(messages) {
        entered();
        await new Promise<void>((resolve) => (release = resolve));
        return messages.map(() => ({ ok: true }));
      },
    };
    const relay = relayOf(outbox, publisher, { batchSize: 1 }).start();
    await inPublish;
    let stopped = false;
    const stopping = relay.stop().then(() => (stopped = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(stopped, false, 'stop waits for the pass in flight');
    release();
    await stopping;
    assert.equal(outbox.row(ids[0] ?? '').state, 'published');
    assert.equal(outbox.row(ids[1] ?? '').state, 'pending', 'no pass after stop');
    assert.equal(relay.running, false);
  });

  it('stops when its signal is aborted', async () => {
    const outbox = new MemoryOutbox();
    const controller = new AbortController();
    const { publisher } = recorder();
    const relay = relayOf(outbox, publisher, { signal: controller.signal, pollMs: 600_000 }).start();
    assert.equal(relay.running, true);
    controller.abort();
    await eventually(() => !relay.running, 'the relay stopped');
  });

  it('reports each pass to onPass', async () => {
    const outbox = new MemoryOutbox();
    outbox.add({ topic: 't', payload: 1 });
    const passes: unknown[] = [];
    await relayOf(outbox, recorder().publisher, { onPass: (result) => passes.push(result) }).drain();
    assert.deepEqual(passes, [
      { claimed: 1, published: 1, failed: 0, dead: 0 },
      { claimed: 0, published: 0, failed: 0, dead: 0 },
    ]);
  });

  it('deletes published messages older than cleanup.afterMs, and keeps them with cleanup: false', async () => {
    const outbox = new MemoryOutbox();
    const old = outbox.add({ topic: 't', payload: 'old' });
    const pending = outbox.add({ topic: 't', payload: 'pending', notBeforeMs: Date.now() + 600_000 });
    await relayOf(outbox, recorder().publisher).drain();
    outbox.row(old).publishedAtMs = Date.now() - 10_000;
    const keep = relayOf(outbox, recorder().publisher, { pollMs: 5 }).start();
    await new Promise((resolve) => setTimeout(resolve, 30));
    await keep.stop();
    assert.equal(outbox.rows.length, 2);
    const relay = new OutboxRelay({
      outbox,
      publisher: recorder().publisher,
      cleanup: { afterMs: 5_000, everyMs: 60_000 },
    }).start();
    await eventually(() => outbox.rows.length === 1, 'the old published message deleted');
    await relay.stop();
    assert.equal(outbox.rows[0]?.id, pending);
  });

  it('refuses options out of range with INVALID_OPTIONS', () => {
    const outbox = new MemoryOutbox();
    const { publisher } = recorder();
    // Past 2^31 - 1 ms, Node fires a timer after 1 ms: such a poll or backoff would make the relay spin.
    const tooLong = 2 ** 31;
    for (const options of [
      { batchSize: 0 },
      { batchSize: 1001 },
      { pollMs: 0 },
      { maxAttempts: 1.5 },
      { pollMs: tooLong },
      { backoff: { baseMs: tooLong, maxMs: tooLong } },
      { backoff: { maxMs: tooLong } },
    ]) {
      assert.throws(
        () => new OutboxRelay({ outbox, publisher, ...options }),
        (error) => isIdempotencyError(error, 'INVALID_OPTIONS') && /\[idem\] \[outbox relay\]/.test(error.message),
      );
    }
  });
});
