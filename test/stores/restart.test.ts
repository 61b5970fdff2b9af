// A store's server restarted under load, with real processes: PostgreSQL (immediate shutdown, a
// crash to the server) and Redis with an append-only file fsynced on every write (SIGKILL), each a
// private server this test starts on its own port, never the shared one.
//
// What is promised, and checked here: no key's work runs twice (the lease, 120 s, outlives the
// outage, so no key can be taken over); every answer a caller got equals the one effect its key
// had, and the stored result is that effect's; every call that starts while the server is down is
// refused with STORE_UNAVAILABLE (fail closed: nothing runs); and once the server is back, the
// same processes' calls succeed again: the store's client reconnected by itself.
// And a key whose work ran before its completion met the outage keeps its result: the completion
// is retried while the lease holds, so it lands once the server is back.
// What is not promised: a claim whose caller was told it failed (the connection dropped with the
// command in flight) may still have landed; that key stays IN_PROGRESS, with no effect, until its
// lease ends. The test counts such keys.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { openStore, parseStoreUrl } from '../../src/cli/store-url.js';
import { ErrorCode, idempotent, isIdempotencyError } from '../../src/core/index.js';
import { type PrivateServer, startPrivatePostgres, startPrivateRedis } from './private-server.js';

const workerPath = new URL('./fixtures/restart-load-worker.ts', import.meta.url).pathname;
const WORKERS = 4;
const BEFORE_KEYS = Array.from({ length: 200 }, (_, i) => `before-${i}`);
const AFTER_KEYS = Array.from({ length: 20 }, (_, i) => `after-${i}`);

type Phase = 'before' | 'down' | 'restarting' | 'after';
interface Answer {
  key: string;
  /** The phase the worker was in when the call started, and when it ended. */
  phase: Phase;
  ended: Phase;
  value?: { pid: number; nonce: string };
  code?: string;
}
interface Effect {
  key: string;
  pid: number;
  nonce: string;
}

/** A worker process and every answer it printed so far. */
class Worker {
  readonly child: ChildProcess;
  readonly answers: Answer[] = [];
  readonly exited: Promise<number | null>;
  done = false;
  acked = false;
  #waiters = new Set<() => void>();

  constructor(job: unknown) {
    this.child = spawn(process.execPath, [...process.execArgv, workerPath, JSON.stringify(job)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const parsed = JSON.parse(line) as Answer | { done: true } | { ack: string };
      if ('done' in parsed) this.done = true;
      else if ('ack' in parsed) this.acked = true;
      else this.answers.push(parsed);
      for (const wake of this.#waiters) wake();
    });
    void this.exited.then(() => {
      for (const wake of this.#waiters) wake();
    });
  }

  /** Resolves once `test` holds of this worker's answers; rejects if the worker exits first. */
  async until(test: (answers: Answer[]) => boolean, what: string): Promise<void> {
    while (!test(this.answers)) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`worker ${this.child.pid} exited before ${what}`);
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#waiters.delete(wake);
          resolve();
        };
        this.#waiters.add(wake);
      });
    }
  }

  tell(line: string): void {
    this.child.stdin?.write(`${line}\n`);
  }
}

const servers: Record<'postgres' | 'redis', () => Promise<PrivateServer>> = {
  postgres: () => startPrivatePostgres(),
  // Persistence on every write: without it a restarted Redis starts empty and every record is lost.
  redis: () => startPrivateRedis({ persistent: true }),
};

for (const kind of ['postgres', 'redis'] as const) {
  describe(`a private ${kind} restarted under load, with real processes`, () => {
    it('runs no key twice, stores what callers were told, fails closed while down and comes back by itself', async (t) => {
      const server = await servers[kind]();
      const dir = mkdtempSync(join(tmpdir(), 'idem-restart-'));
      const ledger = join(dir, 'ledger');
      writeFileSync(ledger, '');
      const workers: Worker[] = [];
      try {
        for (let i = 0; i < WORKERS; i++) {
          // Each worker walks the keys from another starting point, so they meet on keys often.
          const offset = (i * BEFORE_KEYS.length) / WORKERS;
          const before = [...BEFORE_KEYS.slice(offset), ...BEFORE_KEYS.slice(0, offset)];
          workers.push(new Worker({ url: server.url, ledger, before, after: AFTER_KEYS }));
        }
        // Under load: every worker has had answers from the live server.
        await Promise.all(workers.map((w) => w.until((a) => a.filter((x) => x.value).length >= 10, 'load')));
        await server.stop();
        for (const worker of workers) worker.tell('down');
        // Every worker saw the outage: two calls started after the stop (its probe calls), both answered.
        await Promise.all(workers.map((w) => w.until((a) => a.filter((x) => x.phase === 'down').length >= 2, 'down')));
        // Every worker knows, before the server starts again, that the outage ends: an answer it
        // gives with `ended: 'down'` came while the server was certainly down.
        for (const worker of workers) worker.tell('restarting');
        await Promise.all(workers.map((w) => w.until(() => w.acked, 'restarting')));
        await server.start();
        for (const worker of workers) worker.tell('restarted');
        const codes = await Promise.all(workers.map((w) => w.exited));
        assert.deepEqual(
          codes,
          workers.map(() => 0),
          'every worker finished its calls after the restart',
        );
        assert.ok(workers.every((w) => w.done));

        const answers = workers.flatMap((w) => w.answers);
        const effects = new Map<string, Effect[]>();
        for (const line of readFileSync(ledger, 'utf8').split('\n').filter(Boolean)) {
          const effect = JSON.parse(line) as Effect;
          effects.set(effect.key, [...(effects.get(effect.key) ?? []), effect]);
        }
        const twice = [...effects].filter(([, list]) => list.length > 1).map(([key]) => key);
        assert.deepEqual(twice, [], 'no key ran twice');

        // Fail closed: a call made while the server was down was refused, and ran nothing. (A call
        // that started during the outage and was still waiting for the client when the server
        // came back may succeed: it ends in `restarting`.)
        const down = answers.filter((a) => a.phase === 'down' && a.ended === 'down');
        assert.deepEqual(
          down.filter((a) => a.code !== ErrorCode.STORE_UNAVAILABLE),
          [],
          'every call made during the outage got STORE_UNAVAILABLE',
        );
        // Every answer a caller got is the one effect of its key.
        for (const answer of answers.filter((a) => a.value !== undefined)) {
          const [effect] = effects.get(answer.key) ?? [];
          assert.deepEqual(answer.value, { pid: effect?.pid, nonce: effect?.nonce }, `the answer for ${answer.key}`);
        }
        const unexpected = answers.filter(
          (a) => a.code !== undefined && a.code !== ErrorCode.STORE_UNAVAILABLE && a.code !== ErrorCode.IN_PROGRESS,
        );
        assert.deepEqual(unexpected, [], 'no other error');

        const outcome = await storedOutcomes(server.url, [...BEFORE_KEYS, ...AFTER_KEYS]);
        const orphans: string[] = [];
        let unanswered = 0;
        for (const [key, stored] of outcome) {
          const effect = effects.get(key)?.[0];
          if (stored === 'in_progress') {
            // With an effect: a run whose result was lost (the completion gave up): not promised away.
            // Without an effect: a claim that took effect after its caller was told it failed.
            if (effect !== undefined) orphans.push(key);
            else unanswered++;
            continue;
          }
          assert.notEqual(stored, 'absent', `${key} was called after the restart, so it has a record`);
          assert.deepEqual(stored, { pid: effect?.pid, nonce: effect?.nonce }, `the stored result of ${key}`);
        }
        assert.deepEqual(orphans, [], 'every key whose work ran has its result stored');
        for (const key of AFTER_KEYS) {
          assert.equal(typeof outcome.get(key), 'object', `${key}, first called after the restart, completed`);
        }
        t.diagnostic(
          `${answers.length} answers, ${down.length} during the outage, ${answers.filter((a) => a.phase === 'after' && a.code === ErrorCode.STORE_UNAVAILABLE).length} unavailable after the restart before the client reconnected, ${effects.size} keys run, ${answers.filter((a) => a.phase === 'before' && a.ended !== 'before' && a.value !== undefined).length} completed across the outage, ${unanswered} claimed without an answer`,
        );
      } finally {
        for (const worker of workers) worker.child.kill('SIGKILL');
        await server.dispose();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

describe('a private redis without persistence, restarted', () => {
  it('forgets every record: a key completed before the restart runs again after it', async () => {
    const server = await startPrivateRedis({ persistent: false });
    const store = await openStore(parseStoreUrl(server.url), { timeoutMs: 5000 });
    try {
      let runs = 0;
      const charge = idempotent(async (_key: string) => ++runs, { store, name: 'forgotten', key: (key) => key });
      assert.equal(await charge('order-1'), 1);
      assert.equal(await charge('order-1'), 1, 'a replay, before the restart');
      await server.stop();
      await server.start();
      // The same store object reconnects by itself; the record is gone, so the work runs again.
      let answer: number | undefined;
      for (let attempt = 0; answer === undefined; attempt++) {
        try {
          answer = await charge('order-1');
        } catch (error) {
          if (!isIdempotencyError(error, ErrorCode.STORE_UNAVAILABLE) || attempt >= 300) throw error;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      assert.equal(answer, 2);
    } finally {
      await store.close();
      await server.dispose();
    }
  });
});

/**
 * Each key's stored outcome, read through the same operation's name from a fresh process-local
 * store: the stored value (a replay), `in_progress`, or `absent` (the probe would have run).
 */
async function storedOutcomes(
  url: string,
  keys: string[],
): Promise<Map<string, { pid: number; nonce: string } | 'in_progress' | 'absent'>> {
  const store = await openStore(parseStoreUrl(url), { timeoutMs: 3000 });
  const absent = new Error('no record');
  const probe = idempotent(
    async (_key: string): Promise<{ pid: number; nonce: string }> => {
      throw absent;
    },
    { store, name: 'restart-load', key: (key) => key, leaseMs: 120_000 },
  );
  const found = new Map<string, { pid: number; nonce: string } | 'in_progress' | 'absent'>();
  try {
    for (const key of keys) {
      try {
        found.set(key, await probe(key));
      } catch (error) {
        if (error === absent) found.set(key, 'absent');
        else if (isIdempotencyError(error, ErrorCode.IN_PROGRESS)) found.set(key, 'in_progress');
        else throw error;
      }
    }
  } finally {
    await store.close();
  }
  return found;
}
