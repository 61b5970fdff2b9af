import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { type Job, type Processor, Queue, Worker } from 'bullmq';
import { isIdempotencyError } from '../../src/core/errors.js';
import type { AdminStore } from '../../src/core/store.js';
import { guardBullProcessor } from '../../src/messaging/index.js';
import { runChild } from '../kill-child.js';
import { createStore, dropStore } from '../stores/redis.factory.js';
import { bullConnection, Ledger } from './fixtures/bullmq-ledger.js';

const workerPath = new URL('./fixtures/bullmq-worker.ts', import.meta.url).pathname;
const suffix = randomBytes(4).toString('hex');
const namespace = `jobs_bullmq_${suffix}`;
const connection = bullConnection();
/** BullMQ's lock lasts 1 s here, and the stalled check runs every second: a job a worker dropped stalls soon. */
const quickStalls = { connection, lockDuration: 1000, stalledInterval: 1000 };

/** The job once it completed or failed (polled: BullMQ's own events would need one more connection). */
async function settled(queue: Queue, id: string): Promise<Job> {
  const untilMs = Date.now() + 40_000;
  while (Date.now() < untilMs) {
    const state = await queue.getJobState(id);
    // Read after the state: a job read first could have finished in between, without its outcome.
    const job = state === 'completed' || state === 'failed' ? await queue.getJob(id) : undefined;
    if (job) return job;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`job ${id} did not complete or fail within 40 s`);
}

describe('the BullMQ guard, on the real Redis', () => {
  let store: AdminStore;
  let ledger: Ledger;
  let dir: string;
  const queues: Queue[] = [];
  const workers: Worker[] = [];
  let count = 0;

  /** A queue of its own for each test. */
  function newQueue(): Queue {
    const queue = new Queue(`jobs-${suffix}-${++count}`, { connection });
    queues.push(queue);
    return queue;
  }
  function startWorker(queue: Queue, processor: Processor, options = {}): Worker {
    const worker = new Worker(queue.name, processor, { connection, ...options });
    workers.push(worker);
    return worker;
  }

  before(async () => {
    store = await createStore(namespace);
    ledger = new Ledger(`ledger_${suffix}`);
    dir = mkdtempSync(join(tmpdir(), 'idem-bullmq-'));
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((worker) => worker.close(true)));
  });
  after(async () => {
    for (const queue of queues) {
      await queue.obliterate({ force: true });
      await queue.close();
    }
    await store.close();
    await dropStore(namespace);
    await ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs a job once: the same job run again returns the stored value without running', async () => {
    const queue = newQueue();
    const guarded = guardBullProcessor(ledger.processor(), { store });
    startWorker(queue, guarded);
    await queue.add('charge', { n: 1 }, { jobId: 'once' });
    const job = await settled(queue, 'once');
    assert.deepEqual(job.returnvalue, { n: 1, by: process.pid });
    // The processor BullMQ would call again after a stall, called again here on the same job.
    assert.deepEqual(await guarded(job), { n: 1, by: process.pid });
    assert.equal((await ledger.runs('once')).length, 1);
  });

  it('replays the first value to a job re-added under the id of one that completed and was removed', async () => {
    const queue = newQueue();
    startWorker(queue, guardBullProcessor(ledger.processor(), { store }));
    await queue.add('charge', { n: 2 }, { jobId: 'again' });
    const first = await settled(queue, 'again');
    await first.remove();
    await queue.add('charge', { n: 2 }, { jobId: 'again' });
    const second = await settled(queue, 'again');
    assert.equal(await second.getState(), 'completed');
    assert.deepEqual(second.returnvalue, first.returnvalue);
    assert.equal((await ledger.runs('again')).length, 1);
  });

  it("runs a failed job again on BullMQ's retry, and completes it once", async () => {
    const queue = newQueue();
    const work = ledger.processor();
    const attempts: number[] = [];
    startWorker(
      queue,
      guardBullProcessor(
        async (job: Job<{ n: number }>, token, signal, context) => {
          attempts.push(context.attempts);
          if (job.attemptsMade === 0) throw new Error('the payment service is down');
          return await work(job, token, signal, context);
        },
        { store },
      ),
    );
    await queue.add('charge', { n: 3 }, { jobId: 'retried', attempts: 3 });
    const job = await settled(queue, 'retried');
    assert.equal(await job.getState(), 'completed');
    assert.equal(job.attemptsMade, 2);
    assert.deepEqual(attempts, [1, 1], 'the failed attempt released the key: the retry claimed it anew and ran');
    const runs = await ledger.runs('retried');
    assert.equal(runs.length, 1);
    assert.equal(await ledger.effect(runs[0]?.key ?? ''), `retried:${process.pid}`);
  });

  it('fails a job re-added under a used id with other data, without running it or retrying', async () => {
    const queue = newQueue();
    startWorker(queue, guardBullProcessor(ledger.processor(), { store }));
    await queue.add('charge', { n: 4 }, { jobId: 'reused' });
    await (await settled(queue, 'reused')).remove();
    await queue.add('charge', { n: 40 }, { jobId: 'reused', attempts: 3 });
    const job = await settled(queue, 'reused');
    assert.equal(await job.getState(), 'failed');
    assert.equal(job.attemptsMade, 1, 'not retried: the error is named UnrecoverableError');
    assert.match(job.failedReason, /processed before with other data/);
    assert.equal((await ledger.runs('reused')).length, 1);
  });

  it('puts a job back for later, without failing it, while an earlier run still holds it, then replays that run', async () => {
    const queue = newQueue();
    await queue.add('charge', { n: 5 }, { jobId: 'held', attempts: 1 });
    const job = (await queue.getJob('held')) as Job<{ n: number }>;
    // An earlier run that still holds the job (as a worker that BullMQ saw stall but kept going).
    let finishEarlier: () => void = () => {};
    const earlier = guardBullProcessor(
      async () => {
        await new Promise<void>((resolve) => (finishEarlier = resolve));
        return 'from the earlier run';
      },
      { store, leaseMs: 2000 },
    )(job);
    await new Promise((resolve) => setTimeout(resolve, 100));
    let ran = 0;
    const guarded = guardBullProcessor(
      () => {
        ran++;
        return 'from this run';
      },
      { store, leaseMs: 2000, waitMs: 50 },
    );
    await assert.rejects(guarded(job), (error: unknown) => isIdempotencyError(error, 'IN_PROGRESS'));
    startWorker(queue, guarded);
    let state = await job.getState();
    for (let i = 0; i < 200 && state !== 'delayed'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      state = await job.getState();
    }
    assert.equal(state, 'delayed', 'the worker put the job back instead of failing it');
    finishEarlier();
    assert.equal(await earlier, 'from the earlier run');
    const done = await settled(queue, 'held');
    assert.equal(await done.getState(), 'completed');
    assert.equal(done.returnvalue, 'from the earlier run');
    assert.equal(ran, 0, 'the job never ran beside the earlier run, nor after it');
  });

  describe('a worker killed mid-job: the job stalls and another worker runs it', () => {
    const cases = [
      { point: 'before-effect', runs: 2, by: 'the second worker' },
      { point: 'after-effect', runs: 2, by: 'the first worker' },
      { point: 'after-complete', runs: 1, by: 'the first worker' },
    ] as const;
    for (const { point, runs, by } of cases) {
      it(`takes effect once and completes when the worker dies at ${point} (${runs} run${runs > 1 ? 's' : ''}, the effect by ${by})`, async () => {
        const queue = newQueue();
        const id = `killed-${point}`;
        await queue.add('charge', { n: 6 }, { jobId: id, attempts: 1 });
        const leaseMs = 1500;
        const child = await runChild(
          workerPath,
          { queue: queue.name, namespace, ledger: `ledger_${suffix}`, leaseMs, flag: '' },
          point,
        );
        assert.equal(child.signal, 'SIGKILL');
        const [first] = await ledger.runs(id);
        assert.ok(first, 'the killed worker had taken the job');
        startWorker(queue, guardBullProcessor(ledger.processor(), { store, leaseMs }), quickStalls);
        const job = await settled(queue, id);
        assert.equal(await job.getState(), 'completed', job.failedReason);
        const all = await ledger.runs(id);
        assert.equal(all.length, runs);
        assert.deepEqual(
          all.map((run) => run.key),
          all.map(() => first.key),
          'every run has the same key, to pass downstream',
        );
        const effectBy = by === 'the first worker' ? first.pid : process.pid;
        assert.equal(await ledger.effect(first.key), `${id}:${effectBy}`);
        // A replay returns what the killed worker's run returned; a takeover returns its own.
        assert.deepEqual(job.returnvalue, { n: 6, by: point === 'after-complete' ? first.pid : process.pid });
      });
    }

    it('does not run a stalled job again while its first worker is alive and busy: it waits and replays', async () => {
      const queue = newQueue();
      const id = 'blocked';
      await queue.add('charge', { n: 7 }, { jobId: id, attempts: 1 });
      const flag = join(dir, 'rerun-started');
      // The first worker blocks its event loop: BullMQ's lock and Idem's heartbeat stop; the lease
      // (20 s) outlasts the block, BullMQ's lock (1 s) does not.
      const leaseMs = 20_000;
      const child = runChild(
        workerPath,
        { queue: queue.name, namespace, ledger: `ledger_${suffix}`, leaseMs, flag },
        'blocked',
      );
      while ((await ledger.runs(id)).length === 0) await new Promise((resolve) => setTimeout(resolve, 25));
      let reruns = 0;
      const guarded = guardBullProcessor(ledger.processor(), { store, leaseMs });
      startWorker(
        queue,
        async (job: Job, token?: string, signal?: AbortSignal) => {
          reruns++;
          writeFileSync(flag, ''); // BullMQ runs the job again: let the first worker go on
          return await guarded(job, token, signal);
        },
        quickStalls,
      );
      const exit = await child;
      assert.equal(exit.code, 0);
      const job = await settled(queue, id);
      assert.equal(await job.getState(), 'completed', job.failedReason);
      assert.ok(reruns >= 1, 'BullMQ ran the stalled job again in this worker');
      const all = await ledger.runs(id);
      assert.equal(all.length, 1, 'the processor ran once');
      const first = all[0];
      assert.ok(first);
      assert.deepEqual(job.returnvalue, { n: 7, by: first.pid });
      assert.deepEqual(JSON.parse(exit.stdout), { n: 7, by: first.pid });
      assert.equal(await ledger.effect(first.key), `${id}:${first.pid}`);
    });
  });
});
