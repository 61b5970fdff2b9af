import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { storeKeyOf } from '../../src/core/keys.js';
import type { Store } from '../../src/core/store.js';

const workerPath = new URL('./fixtures/charge-worker.ts', import.meta.url).pathname;
const stores = ['sqlite', 'postgres', 'redis'] as const;

interface Worker {
  child: ChildProcess;
  lines: AsyncIterator<string>;
  exited: Promise<number | null>;
}

function startWorker(job: Record<string, unknown>): Worker {
  const child = spawn(process.execPath, [...process.execArgv, workerPath, JSON.stringify(job)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    lines: createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator](),
    exited,
  };
}

async function nextLine(worker: Worker): Promise<string> {
  const next = await worker.lines.next();
  if (next.done) throw new Error('worker ended without a line');
  return next.value;
}

/** The worker's result: its first line that is JSON (a taker prints `started` before it). */
async function resultOf(worker: Worker): Promise<{ chargedBy: number }> {
  for (;;) {
    const line = await nextLine(worker);
    if (line.startsWith('{')) return JSON.parse(line) as { chargedBy: number };
  }
}

const logOf = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean);

for (const storeName of stores) {
  describe(`crashes on ${storeName}, with real processes`, () => {
    const factoryModule = new URL(`../stores/${storeName}.factory.ts`, import.meta.url).href;
    const setup = async () => {
      const namespace = `crash_${randomBytes(4).toString('hex')}`;
      const logFile = join(mkdtempSync(join(tmpdir(), 'idem-crash-')), 'log');
      writeFileSync(logFile, '');
      const factory = (await import(factoryModule)) as {
        createStore: (ns: string) => Promise<Store>;
        dropStore?: (ns: string) => Promise<void>;
      };
      const store = await factory.createStore(namespace);
      return { namespace, logFile, store, drop: () => factory.dropStore?.(namespace) };
    };

    it('a holder killed with SIGKILL mid-operation is taken over once its lease ends; the waiters all get the one new result', async () => {
      const { namespace, logFile, store, drop } = await setup();
      try {
        const job = { factoryModule, namespace, key: 'order-1', leaseMs: 1500, logFile };
        const holder = startWorker({ ...job, holdUntilKilled: true });
        assert.equal(await nextLine(holder), 'started');
        const waiters = Array.from({ length: 3 }, () => startWorker({ ...job, holdUntilKilled: false }));
        await new Promise((resolve) => setTimeout(resolve, 300)); // the waiters are now polling the held key
        holder.child.kill('SIGKILL');
        await holder.exited;
        const results = await Promise.all(waiters.map(resultOf));
        await Promise.all(waiters.map((w) => w.exited));

        const takers = new Set(results.map((r) => r.chargedBy));
        assert.equal(takers.size, 1, 'every waiter got the same result');
        const [taker] = takers;
        assert.notEqual(taker, holder.child.pid);
        assert.deepEqual(logOf(logFile), [`start ${holder.child.pid}`, `start ${taker}`, `done ${taker}`]);
        const record = await store.get(storeKeyOf('charge', '', 'order-1'));
        assert.equal(record?.state, 'completed');
        assert.equal(record?.attempts, 2, 'one claim, one takeover');
      } finally {
        await store.close();
        await drop();
      }
    });

    it('a process killed right after its operation completed leaves the result for every later caller, and nothing runs again', async () => {
      const { namespace, logFile, store, drop } = await setup();
      try {
        const job = { factoryModule, namespace, key: 'order-2', leaseMs: 1500, logFile, holdUntilKilled: false };
        const first = startWorker(job);
        assert.equal(await nextLine(first), 'started');
        const firstResult = await resultOf(first);
        first.child.kill('SIGKILL');
        await first.exited;
        const later = Array.from({ length: 4 }, () => startWorker(job));
        const results = await Promise.all(later.map(resultOf));
        for (const result of results) assert.equal(result.chargedBy, firstResult.chargedBy);
        assert.deepEqual(logOf(logFile), [`start ${first.child.pid}`, `done ${first.child.pid}`]);
      } finally {
        await store.close();
        await drop();
      }
    });
  });
}
