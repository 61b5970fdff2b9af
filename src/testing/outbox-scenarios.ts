/**
 * The outbox conformance scenarios that run in one process: the transaction decides, ids are
 * stable, passes go oldest first, failures retry and die, revive, cleanup, refusals.
 */
import assert from 'node:assert/strict';
import { ErrorCode } from '../core/errors.js';
import {
  enqueueAll,
  enqueueOne,
  type OutboxScenarioContext,
  pass,
  recorder,
  rejectsWith,
  result,
  text,
} from './outbox-inputs.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A message enqueued in a committed transaction is handed to publish once, as written, and marked published. */
export async function committedIsRelayed(context: OutboxScenarioContext): Promise<void> {
  const { outbox } = context;
  const beforeMs = Date.now();
  const id = await enqueueOne(context, {
    topic: 'orders.paid',
    key: 'order-1',
    payload: { orderId: 1 },
    headers: { 'x-tenant': 'acme' },
  });
  assert.match(id, UUID, 'the default id is a random UUID');
  const publisher = recorder();
  assert.deepEqual(await pass(outbox, publisher.publish), result(1, 1));
  const [message] = publisher.seen;
  assert.ok(message !== undefined);
  assert.equal(message.id, id);
  assert.equal(message.topic, 'orders.paid');
  assert.equal(message.key, 'order-1');
  assert.equal(text(message.payload), '{"orderId":1}');
  assert.deepEqual(message.headers, { 'x-tenant': 'acme' });
  assert.equal(message.attempts, 0);
  assert.ok(message.createdAtMs >= beforeMs && message.createdAtMs <= Date.now(), 'createdAtMs is the enqueue time');
  assert.deepEqual(await outbox.counts(), { pending: 0, published: 1, dead: 0 });
  assert.deepEqual(await pass(outbox, publisher.publish), result(0, 0), 'a published message is not taken again');
}

/** A message enqueued in a transaction that rolls back never existed: nothing to count, nothing to relay. */
export async function rolledBackNeverIs(context: OutboxScenarioContext): Promise<void> {
  const { outbox, target } = context;
  await outbox.ensureSchema();
  await assert.rejects(
    target.transaction(async (tx) => {
      await outbox.enqueue(tx, { topic: 'orders.paid', id: 'rolled-back', payload: 'x' });
      throw new Error('the business change failed');
    }),
    /the business change failed/,
  );
  assert.deepEqual(await outbox.counts(), { pending: 0, published: 0, dead: 0 });
  const publisher = recorder();
  assert.deepEqual(await pass(outbox, publisher.publish), result(0, 0));
  assert.deepEqual(publisher.seen, []);
}

/** Enqueuing an id already in the outbox (pending or published) changes nothing and returns that id. */
export async function duplicateIdIsNoOp(context: OutboxScenarioContext): Promise<void> {
  const { outbox } = context;
  assert.equal(await enqueueOne(context, { topic: 't', id: 'order-1', payload: 'first' }), 'order-1');
  assert.equal(await enqueueOne(context, { topic: 'other', id: 'order-1', payload: 'second' }), 'order-1');
  assert.deepEqual(
    await enqueueAll(context, [
      { topic: 't', id: 'twice', payload: 'a' },
      { topic: 't', id: 'twice', payload: 'b' },
    ]),
    ['twice', 'twice'],
  );
  const publisher = recorder();
  assert.deepEqual(await pass(outbox, publisher.publish), result(2, 2));
  assert.deepEqual(
    publisher.seen.map((message) => [message.id, message.topic, text(message.payload)]),
    [
      ['order-1', 't', 'first'],
      ['twice', 't', 'a'],
    ],
  );
  await enqueueOne(context, { topic: 't', id: 'order-1', payload: 'third' });
  assert.deepEqual(await pass(outbox, publisher.publish), result(0, 0), 'a published id is not published again');
  assert.deepEqual(await outbox.counts(), { pending: 0, published: 2, dead: 0 });
}

/** Strings are stored as UTF-8, bytes as they are, anything else as JSON; headers default to none. */
export async function payloadEncodings(context: OutboxScenarioContext): Promise<void> {
  const bytes = new Uint8Array([0, 1, 254, 255]);
  await enqueueAll(context, [
    { topic: 't', id: 'text', payload: 'héllo ✓' },
    { topic: 't', id: 'bytes', payload: bytes },
    { topic: 't', id: 'json', payload: [1, { a: null }] },
    { topic: 'ünïcode topic', id: 'ïd ✓', key: 'kéy', payload: null, headers: {} },
  ]);
  const publisher = recorder();
  await pass(context.outbox, publisher.publish);
  const [asText, asBytes, asJson, other] = publisher.seen;
  assert.equal(text(asText?.payload ?? new Uint8Array()), 'héllo ✓');
  assert.deepEqual([...(asBytes?.payload ?? [])], [...bytes]);
  assert.equal(text(asJson?.payload ?? new Uint8Array()), '[1,{"a":null}]');
  assert.deepEqual(
    [other?.id, other?.topic, other?.key, text(other?.payload ?? new Uint8Array()), other?.headers],
    ['ïd ✓', 'ünïcode topic', 'kéy', 'null', {}],
  );
  assert.deepEqual(asText?.headers, {});
}

/** A pass takes at most `limit` due messages, oldest first (in enqueue order), and the next pass the rest. */
export async function oldestFirst(context: OutboxScenarioContext): Promise<void> {
  for (let i = 0; i < 3; i++) await enqueueOne(context, { topic: 't', id: `m${i}`, payload: i });
  await enqueueAll(context, [
    { topic: 't', id: 'm3', payload: 3 },
    { topic: 't', id: 'm4', payload: 4 },
  ]);
  const publisher = recorder();
  assert.deepEqual(await pass(context.outbox, publisher.publish, { limit: 3 }), result(3, 3));
  assert.deepEqual(publisher.ids(), ['m0', 'm1', 'm2']);
  assert.deepEqual(await pass(context.outbox, publisher.publish, { limit: 3 }), result(2, 2));
  assert.deepEqual(publisher.ids(), ['m0', 'm1', 'm2', 'm3', 'm4']);
  const seqs = publisher.seen.map((message) => message.seq);
  assert.deepEqual(
    seqs,
    [...seqs].sort((a, b) => a - b),
    'seq grows in enqueue order',
  );
}

/** A message with `notBeforeMs` is not taken before that time, and is taken from then on. */
export async function notBeforeIsKept(context: OutboxScenarioContext): Promise<void> {
  const nowMs = Date.now();
  await enqueueOne(context, { topic: 't', id: 'later', payload: 1, notBeforeMs: nowMs + 60_000 });
  const publisher = recorder();
  assert.deepEqual(await pass(context.outbox, publisher.publish, { nowMs: nowMs + 59_999 }), result(0, 0));
  assert.deepEqual(await pass(context.outbox, publisher.publish, { nowMs: nowMs + 60_000 }), result(1, 1));
  assert.deepEqual(publisher.ids(), ['later']);
}

/** A failed publish counts the attempt, schedules the message at `retryAtMs`, and it is not taken before then. */
export async function failureRetriesLater(context: OutboxScenarioContext): Promise<void> {
  const { outbox } = context;
  const nowMs = Date.now();
  await enqueueOne(context, { topic: 't', id: 'flaky', payload: 1 });
  const asked: [number, number][] = [];
  const failing = recorder(() => ({ ok: false, error: 'broker down' }));
  const outcome = await pass(outbox, failing.publish, {
    nowMs,
    retryAtMs: (message, attempts) => {
      asked.push([message.attempts, attempts]);
      return nowMs + 1000;
    },
  });
  assert.deepEqual(outcome, result(1, 0, 1, 0));
  assert.deepEqual(asked, [[1, 1]], 'retryAtMs sees the attempt just failed counted');
  assert.deepEqual(await outbox.counts(), { pending: 1, published: 0, dead: 0 });
  const publisher = recorder();
  assert.deepEqual(await pass(outbox, publisher.publish, { nowMs: nowMs + 999 }), result(0, 0), 'not before retryAtMs');
  assert.deepEqual(await pass(outbox, publisher.publish, { nowMs: nowMs + 1000 }), result(1, 1));
  assert.deepEqual(
    publisher.seen.map((message) => [message.id, message.attempts]),
    [['flaky', 1]],
  );
}

/** `retryAtMs` answering undefined makes the message dead: listed by dead(), no longer relayed, until revived. */
export async function deadAndRevived(context: OutboxScenarioContext): Promise<void> {
  const { outbox } = context;
  const nowMs = Date.now();
  await enqueueAll(context, [
    { topic: 't', id: 'poison', payload: 'p', headers: { h: 'v' } },
    { topic: 't', id: 'fine', payload: 'f' },
  ]);
  const failing = recorder((message) =>
    message.id === 'poison' ? { ok: false, error: 'rejected: no route' } : { ok: true },
  );
  const retryAtMs = (_: unknown, attempts: number) => (attempts < 2 ? nowMs : undefined);
  assert.deepEqual(await pass(outbox, failing.publish, { nowMs, retryAtMs }), result(2, 1, 1, 0));
  assert.deepEqual(await pass(outbox, failing.publish, { nowMs, retryAtMs }), result(1, 0, 0, 1));
  assert.deepEqual(await outbox.counts(), { pending: 0, published: 1, dead: 1 });
  const [dead, ...more] = await outbox.dead();
  assert.equal(more.length, 0);
  assert.deepEqual(
    [dead?.id, dead?.attempts, dead?.lastError, text(dead?.payload ?? new Uint8Array()), dead?.headers],
    ['poison', 2, 'rejected: no route', 'p', { h: 'v' }],
  );
  assert.deepEqual(await pass(outbox, failing.publish, { nowMs: nowMs + 3_600_000 }), result(0, 0), 'dead stays put');
  assert.equal(await outbox.revive('no-such-message'), false);
  assert.equal(await outbox.revive('fine'), false, 'a published message is not dead');
  assert.equal(await outbox.revive('poison'), true);
  assert.equal(await outbox.revive('poison'), false, 'revived already');
  assert.deepEqual(await outbox.dead(), []);
  const publisher = recorder();
  assert.deepEqual(await pass(outbox, publisher.publish, { nowMs }), result(1, 1));
  assert.deepEqual(
    publisher.seen.map((message) => [message.id, message.attempts]),
    [['poison', 0]],
  );
}

/**
 * Messages of one key go one at a time in enqueue order: a pass takes only the key's oldest
 * pending one, and a later one waits while an earlier one is retrying; other keys and unkeyed
 * messages go ahead.
 */
export async function perKeyOrder(context: OutboxScenarioContext): Promise<void> {
  const { outbox } = context;
  const nowMs = Date.now();
  await enqueueAll(context, [
    { topic: 't', id: 'k1', key: 'k', payload: 1 },
    { topic: 't', id: 'k2', key: 'k', payload: 2 },
    { topic: 't', id: 'free', payload: 0 },
    { topic: 't', id: 'j1', key: 'j', payload: 1 },
    { topic: 't', id: 'k3', key: 'k', payload: 3 },
    { topic: 't', id: 'j2', key: 'j', payload: 2 },
  ]);
  const publisher = recorder((message) =>
    message.id === 'k1' && message.attempts === 0 ? { ok: false, error: 'x' } : { ok: true },
  );
  const at = (offsetMs: number) => ({ nowMs: nowMs + offsetMs, retryAtMs: () => nowMs + 1000 });
  assert.deepEqual(await pass(outbox, publisher.publish, at(0)), result(3, 2, 1));
  assert.deepEqual(publisher.ids(), ['k1', 'free', 'j1'], "one message per key: each key's oldest");
  assert.deepEqual(await pass(outbox, publisher.publish, at(10)), result(1, 1));
  assert.deepEqual(publisher.ids().slice(3), ['j2'], 'k2 waits while k1 is pending, though k1 is not due');
  assert.deepEqual(await pass(outbox, publisher.publish, at(1000)), result(1, 1));
  assert.deepEqual(await pass(outbox, publisher.publish, at(1000)), result(1, 1));
  assert.deepEqual(await pass(outbox, publisher.publish, at(1000)), result(1, 1));
  assert.deepEqual(publisher.ids().slice(4), ['k1', 'k2', 'k3']);
}

/** When `publish` throws, the pass rejects with that error and its messages stay pending, published later with the same ids. */
export async function publishThrowsLeavesPending(context: OutboxScenarioContext): Promise<void> {
  const { outbox } = context;
  await enqueueAll(context, [
    { topic: 't', id: 'a', payload: 1 },
    { topic: 't', id: 'b', key: 'k', payload: 2 },
  ]);
  const boom = new Error('the broker connection broke');
  const seen: string[] = [];
  await assert.rejects(
    pass(outbox, async (messages) => {
      seen.push(...messages.map((message) => message.id));
      throw boom;
    }),
    (error: unknown) => error === boom,
  );
  await assert.rejects(
    pass(outbox, async (messages) => messages.map(() => ({ ok: false, error: 'e' })), {
      retryAtMs: () => {
        throw boom;
      },
    }),
    (error: unknown) => error === boom,
    'an error of retryAtMs passes through too',
  );
  assert.deepEqual(await outbox.counts(), { pending: 2, published: 0, dead: 0 });
  const publisher = recorder();
  assert.deepEqual(await pass(outbox, publisher.publish), result(2, 2));
  assert.deepEqual(
    publisher.seen.map((message) => [message.id, message.attempts]),
    [
      ['a', 0],
      ['b', 0],
    ],
  );
  assert.deepEqual(seen, ['a', 'b']);
}

/** cleanup deletes published messages published before the cutoff, at most `limit`, and never pending or dead ones. */
export async function cleanupPublishedOnly(context: OutboxScenarioContext): Promise<void> {
  const { outbox } = context;
  const t = Date.now();
  await enqueueAll(
    context,
    [1, 2, 3].map((i) => ({ topic: 't', id: `old${i}`, payload: i })),
  );
  await pass(outbox, recorder().publish, { nowMs: t });
  await enqueueAll(context, [
    { topic: 't', id: 'recent', payload: 0 },
    { topic: 't', id: 'dead', payload: 0 },
  ]);
  const deadOne = recorder((message) => (message.id === 'dead' ? { ok: false, error: 'no' } : { ok: true }));
  await pass(outbox, deadOne.publish, { nowMs: t + 100 });
  await enqueueOne(context, { topic: 't', id: 'pending', payload: 0, notBeforeMs: t + 3_600_000 });
  assert.deepEqual(await outbox.counts(), { pending: 1, published: 4, dead: 1 });
  assert.equal(await outbox.cleanup(t), 0, 'published at the cutoff is kept');
  assert.equal(await outbox.cleanup(t + 1, 2), 2);
  assert.equal(await outbox.cleanup(t + 1), 1);
  assert.deepEqual(await outbox.counts(), { pending: 1, published: 1, dead: 1 });
  assert.equal(await outbox.cleanup(t + 10_000_000), 1);
  assert.deepEqual(await outbox.counts(), { pending: 1, published: 0, dead: 1 });
  assert.deepEqual(
    (await outbox.dead()).map((message) => message.id),
    ['dead'],
  );
}

/** A bad message is refused with INVALID_OPTIONS before anything is written; the transaction still commits. */
export async function badInputRefused(context: OutboxScenarioContext): Promise<void> {
  const { outbox, target } = context;
  const max = 1024 * 1024;
  const bad: [string, unknown][] = [
    ['an empty topic', { topic: '', payload: 1 }],
    ['a 256-character id', { topic: 't', id: 'x'.repeat(256), payload: 1 }],
    ['an empty key', { topic: 't', key: '', payload: 1 }],
    ['a payload over the maximum', { topic: 't', payload: new Uint8Array(max + 1) }],
    ['a header that is not a string', { topic: 't', payload: 1, headers: { retries: 3 } }],
    ['a payload with no JSON form', { topic: 't', payload: () => 1 }],
    ['a negative notBeforeMs', { topic: 't', payload: 1, notBeforeMs: -1 }],
  ];
  await target.transaction(async (tx) => {
    for (const [what, message] of bad) {
      await rejectsWith(outbox.enqueue(tx, message as never), ErrorCode.INVALID_OPTIONS, what);
    }
    await outbox.enqueue(tx, { topic: 't', id: 'x'.repeat(255), payload: new Uint8Array(max) });
  });
  assert.deepEqual(await outbox.counts(), { pending: 1, published: 0, dead: 0 }, 'only the good message was written');
  const publisher = recorder();
  await pass(outbox, publisher.publish);
  assert.equal(publisher.seen[0]?.payload.byteLength, max, 'a payload of exactly the maximum goes through');
}

/** A bad relay pass is refused (limit, nowMs), and a publisher that answers the wrong number of results leaves the messages pending. */
export async function badRelayRefused(context: OutboxScenarioContext): Promise<void> {
  const { outbox } = context;
  const publish = recorder().publish;
  for (const limit of [0, 1001, 1.5]) {
    await rejectsWith(pass(outbox, publish, { limit }), ErrorCode.INVALID_OPTIONS, `limit ${limit}`);
  }
  await rejectsWith(pass(outbox, publish, { nowMs: Number.NaN }), ErrorCode.INVALID_OPTIONS, 'nowMs NaN');
  await rejectsWith(outbox.cleanup(1.5), ErrorCode.INVALID_OPTIONS, 'cleanup at 1.5 ms');
  await rejectsWith(outbox.dead(0), ErrorCode.INVALID_OPTIONS, 'dead(0)');
  await enqueueAll(context, [
    { topic: 't', id: 'a', payload: 1 },
    { topic: 't', id: 'b', payload: 1 },
  ]);
  await rejectsWith(
    pass(outbox, async () => [{ ok: true }]),
    ErrorCode.INVALID_OPTIONS,
    'one result for two messages',
  );
  assert.deepEqual(await outbox.counts(), { pending: 2, published: 0, dead: 0 });
}

/** After close(), every operation refuses with STORE_CLOSED. */
export async function closedRefuses(context: OutboxScenarioContext): Promise<void> {
  const { outbox, target } = context;
  await outbox.ensureSchema();
  await outbox.close();
  await outbox.close();
  await target.transaction(async (tx) => {
    await rejectsWith(outbox.enqueue(tx, { topic: 't', payload: 1 }), ErrorCode.STORE_CLOSED, 'enqueue');
  });
  await rejectsWith(pass(outbox, recorder().publish), ErrorCode.STORE_CLOSED, 'relay');
  await rejectsWith(outbox.counts(), ErrorCode.STORE_CLOSED, 'counts');
}
