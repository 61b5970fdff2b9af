// A lease holder paused (SIGSTOP) past its lease, with real processes, on the shared PostgreSQL
// and Redis (unique tables and prefixes; nothing is restarted).
//
// What is promised, and checked here: once the paused holder's lease has run out, another caller
// takes the key over (attempts 2, a `run` claim event) and its result is the one stored; when the
// holder wakes up, its heartbeat or its completion finds the token changed: its claim's signal
// aborts, it reports `lease_lost`, its completion is refused and its caller gets LEASE_LOST, never
// the taker's result as its own; the stored result stays the taker's, and later calls replay it.
// What is not promised: the work itself runs once. The holder had started it before the pause,
// so it ran twice (the ledger shows both runs): a lease fences the record, not the work's own
// effects. Work that must not repeat should check the claim's signal, or carry the key downstream.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { ErrorCode, idempotent, isIdempotencyError, storeKeyOf } from '../../src/core/index.js';
import type { AdminStore } from '../../src/core/store.js';

const workerPath = new URL('./fixtures/paused-holder-worker.ts', import.meta.url).pathname;
const factories = {
  postgres: new URL('./postgres.factory.ts', import.meta.url).href,
  redis: new URL('./redis.factory.ts', import.meta.url).href,
};

interface Worker {
  child: ChildProcess;
  lines: AsyncIterator<string>;
}

interface Answer {
  value?: { chargedBy: number };
  code?: string;
  aborted: boolean | null;
  events: { type: string; outcome?: string; attempts?: number }[];
}

function startWorker(job: Record<string, unknown>): Worker {
  const child = spawn(process.execPath, [...process.execArgv, workerPath, JSON.stringify(job)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return { child, lines: createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]() };
}

async function nextLine(worker: Worker): Promise<string> {
  const next = await worker.lines.next();
  if (next.done) throw new Error(`worker ${worker.child.pid} ended without a line`);
  return next.value;
}

/** The worker's last line, its answer as JSON. */
async function answerOf(worker: Worker): Promise<Answer> {
  for (;;) {
    const line = await nextLine(worker);
    if (line.startsWith('{')) return JSON.parse(line) as Answer;
  }
}

for (const [kind, factoryModule] of Object.entries(factories)) {
  describe(`a lease holder paused past its lease on ${kind}, with real processes`, () => {
    it("is fenced when it wakes: its completion is refused, its signal aborts, and the taker's result stays stored", async () => {
      const namespace = `paused_${randomBytes(4).toString('hex')}`;
      const dir = mkdtempSync(join(tmpdir(), 'idem-paused-'));
      const ledger = join(dir, 'ledger');
      writeFileSync(ledger, '');
      const factory = (await import(factoryModule)) as {
        createStore: (ns: string) => Promise<AdminStore>;
        dropStore: (ns: string) => Promise<void>;
      };
      const job = { factoryModule, namespace, key: 'order-1', ledger, leaseMs: 1500 };
      const workers: Worker[] = [];
      try {
        const holder = startWorker({ ...job, holder: true });
        workers.push(holder);
        assert.equal(await nextLine(holder), 'started');
        holder.child.kill('SIGSTOP'); // paused mid-work, heartbeat and all

        // The taker waits for the lease to run out (it polls the store), then takes the key over.
        const taker = startWorker({ ...job, holder: false });
        workers.push(taker);
        const taken = await answerOf(taker);
        assert.deepEqual(taken.value, { chargedBy: taker.child.pid });
        assert.ok(
          taken.events.some((e) => e.type === 'claim' && e.outcome === 'run' && e.attempts === 2),
          `the taker's claim is reported as a takeover: ${JSON.stringify(taken.events)}`,
        );

        holder.child.kill('SIGCONT');
        holder.child.stdin?.write('go\n');
        const held = await answerOf(holder);
        assert.equal(held.code, ErrorCode.LEASE_LOST, `the stale holder is refused: ${JSON.stringify(held)}`);
        assert.equal(held.value, undefined, "the stale holder is not handed the taker's result");
        assert.equal(held.aborted, true, "the stale holder's signal aborted");
        assert.ok(
          held.events.some((e) => e.type === 'lease_lost'),
          `the holder reports the lost lease: ${JSON.stringify(held.events)}`,
        );
        assert.ok(!held.events.some((e) => e.type === 'complete'), 'the holder stored nothing');

        // The record is the taker's, and stays so: a later call replays it without running.
        const store = await factory.createStore(namespace);
        try {
          const record = await store.get(storeKeyOf('paused', '', 'order-1'));
          assert.equal(record?.state, 'completed');
          assert.equal(record?.attempts, 2);
          const later = idempotent(
            async (_orderId: string): Promise<{ chargedBy: number }> => {
              throw new Error('a completed key must not run again');
            },
            { store, name: 'paused', key: (orderId) => orderId },
          );
          assert.deepEqual(await later('order-1'), { chargedBy: taker.child.pid });
        } finally {
          await store.close();
        }
        // Not promised: the holder had started the work before the pause, so it ran twice.
        const runs = readFileSync(ledger, 'utf8').split('\n').filter(Boolean).sort();
        assert.deepEqual(runs, [`run ${holder.child.pid}`, `run ${taker.child.pid}`].sort());
      } catch (error) {
        if (isIdempotencyError(error)) throw new Error(`unexpected ${error.code}: ${error.message}`, { cause: error });
        throw error;
      } finally {
        for (const worker of workers) {
          worker.child.kill('SIGCONT');
          worker.child.kill('SIGKILL');
        }
        await factory.dropStore(namespace);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
