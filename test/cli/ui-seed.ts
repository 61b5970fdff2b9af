/**
 * Records for the dashboard's tests, written through the engine as an application writes them:
 * completed keys spread over the last hour, a key whose lease is live, a stuck key (lease over),
 * a key taken over after its short lease expired, a mismatched request, one workflow run and a
 * few notifications.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Engine } from '../../src/core/engine.js';
import { isJournalStore, type JournalStore } from '../../src/core/journal.js';
import { storeKeyOf } from '../../src/core/keys.js';
import { OutcomeKind } from '../../src/core/outcome.js';
import type { AdminStore } from '../../src/core/store.js';
import { Notifier } from '../../src/notify/index.js';
import { Workflows } from '../../src/workflow/index.js';

/** A body an attacker chose: the page must show it as text. */
export const HOSTILE_BODY = '<img src=x onerror="document.body.dataset.pwned=1"><b>bold?</b>';

export interface Seeded {
  completed: string[];
  /** In progress, lease live for 10 minutes. */
  live: string;
  /** In progress, lease over an hour ago. */
  stuck: string;
  /** Claimed, lease expired, claimed again and completed: attempts 2. */
  takenOver: string;
  /** Completed with an HTTP response whose body is `HOSTILE_BODY`. */
  hostile: string;
}

const MINUTE_MS = 60_000;

/** An HTTP response as the HTTP layer stores it: head length, head JSON [status, headers], body. */
function httpPayload(status: number, body: string): Uint8Array {
  const head = Buffer.from(JSON.stringify([status, [['content-type', 'text/html']]]));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(head.length);
  return Buffer.concat([length, head, Buffer.from(body)]);
}

export async function seedStore(store: AdminStore): Promise<Seeded> {
  let clock = Date.now();
  const engine = new Engine({ store, leaseMs: 1000, heartbeatMs: 0, now: () => clock });
  const key = (name: string) => storeKeyOf('ui-test', 'tenant-1', name);
  const begin = async (name: string, fingerprint = `fp-${name}`) => {
    const decision = await engine.begin({ key: key(name), fingerprint });
    if (decision.kind !== 'run') throw new Error(`seeding ${name}: ${decision.kind}`);
    return decision.lease;
  };
  const start = Date.now();

  const completed: string[] = [];
  for (let i = 0; i < 8; i++) {
    clock = start - (55 - i * 7) * MINUTE_MS;
    const lease = await begin(`done-${i}`);
    await lease.complete({ kind: OutcomeKind.value, payload: Buffer.from(JSON.stringify({ order: i })) });
    completed.push(key(`done-${i}`));
  }

  clock = start - 20 * MINUTE_MS;
  await (await begin('hostile')).complete({ kind: OutcomeKind.value, payload: httpPayload(201, HOSTILE_BODY) });
  // The same key with another request: a mismatch, answered from the record without changing it.
  const mismatch = await engine.begin({ key: key('hostile'), fingerprint: 'another request' });
  if (mismatch.kind !== 'mismatch') throw new Error(`expected a mismatch, got ${mismatch.kind}`);

  // A holder that stops: its 1 s lease ends, and a retry 5 s later takes the key over.
  clock = start - 30 * MINUTE_MS;
  await begin('taken-over');
  clock += 5000;
  const takeover = await begin('taken-over');
  await takeover.complete({ kind: OutcomeKind.value, payload: Buffer.from('"second try"') });

  clock = start - 60 * MINUTE_MS;
  await begin('stuck');

  clock = Date.now();
  const live = new Engine({ store, leaseMs: 10 * MINUTE_MS, heartbeatMs: 0 });
  const liveDecision = await live.begin({ key: key('live'), fingerprint: 'fp-live' });
  if (liveDecision.kind !== 'run') throw new Error(`seeding live: ${liveDecision.kind}`);

  if (isJournalStore(store)) await seedJournals(store);
  return { completed, live: key('live'), stuck: key('stuck'), takenOver: key('taken-over'), hostile: key('hostile') };
}

async function seedJournals(store: JournalStore): Promise<void> {
  const workflows = new Workflows({ store, leaseMs: 5000, heartbeatMs: 0 });
  const order = workflows.define('order', async (ctx, input: { id: string }) => {
    const reserved = await ctx.step('reserve', async () => {
      await sleep(30);
      return { sku: 'book' };
    });
    const charged = await ctx.step('charge', async () => {
      await sleep(60);
      return { charge: `ch_${input.id}` };
    });
    await ctx.step('email', async () => {
      await sleep(20);
      return 'sent';
    });
    return { ...reserved, ...charged };
  });
  await order.run('order-1', { id: 'order-1' });
  const notifier = new Notifier({ store });
  const send = async () => ({ messageId: 'msg-1' });
  await notifier.notify({ recipient: 'ann', event: 'shipped:1', channel: 'email', send });
  await notifier.notify({ recipient: 'ann', event: 'shipped:1', channel: 'email', send });
}
