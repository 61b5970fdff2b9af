/**
 * The outbox conformance scenarios about relays at the same time: passes in one process, relays in
 * several processes (children running `outbox-worker.ts`), and a relay killed mid-pass.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OutboxMessage, PendingMessage } from '../messaging/outbox/outbox.js';
import {
  drain,
  enqueueAll,
  enqueueOne,
  type OutboxScenarioContext,
  pass,
  pause,
  recorder,
  result,
} from './outbox-inputs.js';
import type { OutboxWorkerJob, OutboxWorkerReport } from './outbox-worker.js';
import { startLineProcess, startWorkers, type Worker } from './process-scenarios.js';

const workerUrl = new URL(`./outbox-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/**
 * While one pass holds a key's first message (its publish waits), a second pass takes neither it
 * nor the key's next one, but does take other messages; once the first commits, the next is taken.
 */
export async function lockedKeyBlocksSuccessor(context: OutboxScenarioContext): Promise<void> {
  const { outbox } = context;
  await enqueueAll(context, [
    { topic: 't', id: 'k1', key: 'k', payload: 1 },
    { topic: 't', id: 'k2', key: 'k', payload: 2 },
    { topic: 't', id: 'free', payload: 0 },
  ]);
  const second = recorder();
  const first = recorder();
  const held = pass(
    outbox,
    async (messages) => {
      // The second pass runs to its end while this one holds k1.
      assert.deepEqual(await pass(outbox, second.publish), result(1, 1));
      return first.publish(messages);
    },
    { limit: 1 },
  );
  assert.deepEqual(await held, result(1, 1));
  assert.deepEqual(first.ids(), ['k1']);
  assert.deepEqual(second.ids(), ['free'], 'neither k1 (held) nor k2 (not the oldest of k)');
  const third = recorder();
  assert.deepEqual(await pass(outbox, third.publish), result(1, 1));
  assert.deepEqual(third.ids(), ['k2']);
}

/** Messages for the concurrency scenarios: a third unkeyed, the rest spread over five keys. */
function raceMessages(count: number): OutboxMessage[] {
  return Array.from({ length: count }, (_, i) => ({
    topic: 'race',
    id: `m${String(i).padStart(5, '0')}`,
    key: i % 3 === 0 ? undefined : `key${i % 5}`,
    payload: i,
  }));
}

async function enqueueRace(context: OutboxScenarioContext): Promise<OutboxMessage[]> {
  const messages = raceMessages(context.counts.messages);
  for (let i = 0; i < messages.length; i += 50) await enqueueAll(context, messages.slice(i, i + 50));
  return messages;
}

/** Checks that every message was published exactly once, and each key's in enqueue order. */
function checkPublished(messages: readonly OutboxMessage[], publishedInOrder: readonly string[]): void {
  assert.deepEqual(
    [...publishedInOrder].sort(),
    messages.map((message) => message.id).sort(),
    'every message published exactly once',
  );
  const position = new Map(publishedInOrder.map((id, index) => [id, index]));
  const lastOfKey = new Map<string, number>();
  for (const message of messages) {
    if (message.key === undefined) continue;
    const at = position.get(message.id as string) ?? -1;
    assert.ok(
      at > (lastOfKey.get(message.key) ?? -1),
      `${message.id} published after the earlier ones of ${message.key}`,
    );
    lastOfKey.set(message.key, at);
  }
}

/**
 * Several passes at once in one process never hand one message to publish twice at the same
 * time; together they publish every message exactly once, each key's in order.
 */
export async function concurrentPassesShare(context: OutboxScenarioContext): Promise<void> {
  const messages = await enqueueRace(context);
  const inFlight = new Set<string>();
  const order: string[] = [];
  const overlaps: string[] = [];
  const publish = async (batch: readonly PendingMessage[]) => {
    for (const message of batch) {
      if (inFlight.has(message.id)) overlaps.push(message.id);
      inFlight.add(message.id);
      order.push(message.id);
    }
    await pause(Math.floor(Math.random() * 3));
    for (const message of batch) inFlight.delete(message.id);
    return batch.map(() => ({ ok: true as const }));
  };
  await Promise.all(Array.from({ length: context.counts.processes }, () => drain(context.outbox, publish, 7)));
  assert.deepEqual(overlaps, [], 'no message was in two publishes at once');
  checkPublished(messages, order);
  assert.deepEqual(await context.outbox.counts(), { pending: 0, published: messages.length, dead: 0 });
}

/** Spawns an outbox worker and resolves once it says `ready`. */
function startWorker(job: OutboxWorkerJob): Promise<Worker> {
  return startLineProcess(workerUrl, [JSON.stringify(job)], 'outbox worker');
}

/**
 * Relays in several processes never publish one message at the same time (each claims a marker
 * file while it publishes) and together publish every message exactly once, each key's in order
 * (the order of an append-only log the processes share).
 */
export async function processesShare(context: OutboxScenarioContext): Promise<void> {
  const messages = await enqueueRace(context);
  const dir = mkdtempSync(join(tmpdir(), 'idem-outbox-'));
  try {
    const log = join(dir, 'published.log');
    const job: OutboxWorkerJob = { ...context.job, mode: 'relay', limit: 7, dir, log };
    const workers = await startWorkers(Array.from({ length: context.counts.processes }, () => () => startWorker(job)));
    for (const worker of workers) worker.process.stdin?.write('go\n');
    const reports = (await Promise.all(workers.map((worker) => worker.nextLine()))).map(
      (line) => JSON.parse(line) as OutboxWorkerReport,
    );
    await Promise.all(workers.map((worker) => worker.exited));
    assert.deepEqual(
      reports.flatMap((report) => report.overlaps),
      [],
      'no message was in two publishes at once',
    );
    assert.ok(
      reports.filter((report) => report.published > 0).length >= 1,
      'the processes published the messages between them',
    );
    checkPublished(messages, readFileSync(log, 'utf8').split('\n').filter(Boolean));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(await context.outbox.counts(), { pending: 0, published: messages.length, dead: 0 });
}

/**
 * A relay process killed (SIGKILL) while its publish runs leaves its messages pending: another
 * relay publishes them again, with the same ids, and each once.
 */
export async function killedRelayLeavesPending(context: OutboxScenarioContext): Promise<void> {
  const ids = await enqueueAll(
    context,
    ['a', 'b', 'c'].map((id) => ({ topic: 't', id, key: id === 'c' ? 'k' : undefined, payload: id })),
  );
  await enqueueOne(context, { topic: 't', id: 'c2', key: 'k', payload: 'c2' });
  const worker = await startWorker({ ...context.job, mode: 'hold', limit: 10 });
  worker.process.stdin?.write('go\n');
  const held = JSON.parse((await worker.nextLine()).replace(/^holding /, '')) as string[];
  assert.deepEqual(held, ids, 'the child holds the three due messages (c2 waits for c)');
  worker.process.kill('SIGKILL');
  await worker.exited;
  const publisher = recorder();
  // Until the dead relay's hold ends (its connection closed, or its lease over), passes find nothing and wait.
  await drain(context.outbox, publisher.publish);
  assert.deepEqual(publisher.ids(), ['a', 'b', 'c', 'c2']);
  assert.deepEqual(
    publisher.seen.map((message) => message.attempts),
    [0, 0, 0, 0],
  );
}
