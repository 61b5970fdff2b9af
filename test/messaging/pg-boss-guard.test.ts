import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import pg from 'pg';
import PgBoss from 'pg-boss';
import type { AdminStore } from '../../src/core/store.js';
import { guardPgBossHandler } from '../../src/messaging/index.js';
import { runChild } from '../kill-child.js';
import { createStore, dropStore, postgresUrl } from '../stores/postgres.factory.js';
import { PgLedger } from './fixtures/pg-boss-ledger.js';

const workerPath = new URL('./fixtures/pg-boss-worker.ts', import.meta.url).pathname;
const suffix = randomBytes(4).toString('hex');
const namespace = `jobs_pgboss_${suffix}`;
const schema = `pgboss_${suffix}`;
const ledgerTable = `jobs_ledger_${suffix}`;
const polling = { pollingIntervalSeconds: 0.5 };

type Data = { n: number };

/** The job once it completed or failed (its state and output are read in one row). */
async function settled(boss: PgBoss, queue: string, id: string): Promise<PgBoss.JobWithMetadata<Data>> {
  const untilMs = Date.now() + 40_000;
  while (Date.now() < untilMs) {
    const job = await boss.getJobById<Data>(queue, id);
    if (job && (job.state === 'completed' || job.state === 'failed')) return job;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`job ${id} did not complete or fail within 40 s`);
}

describe('the pg-boss guard, on the real PostgreSQL', () => {
  let boss: PgBoss;
  let store: AdminStore;
  let ledger: PgLedger;
  let count = 0;
  const working: string[] = [];

  /** A queue of its own for each test. */
  async function newQueue(): Promise<string> {
    const name = `jobs_${suffix}_${++count}`;
    await boss.createQueue(name);
    return name;
  }
  async function work(queue: string, handler: PgBoss.WorkHandler<Data>, options: PgBoss.WorkOptions = {}) {
    await boss.work(queue, { ...polling, ...options }, handler);
    working.push(queue);
  }

  before(async () => {
    // Maintenance every second: an active job past its expiry is failed (and retried) soon.
    boss = new PgBoss({ connectionString: postgresUrl, schema, maintenanceIntervalSeconds: 1, schedule: false });
    boss.on('error', (error) => console.error('[pg-boss]', error));
    await boss.start();
    store = await createStore(namespace);
    ledger = new PgLedger(ledgerTable);
    await ledger.create();
  });
  afterEach(async () => {
    for (const queue of working.splice(0)) await boss.offWork(queue);
  });
  after(async () => {
    await boss.stop({ graceful: false, wait: true });
    await store.close();
    await dropStore(namespace);
    await ledger.drop();
    const client = new pg.Client({ connectionString: postgresUrl });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  it('returns the stored output to a job sent again under the id of one that completed, without running it', async () => {
    const queue = await newQueue();
    const guarded = guardPgBossHandler(ledger.handler(), { store });
    await work(queue, guarded);
    const id = randomUUID();
    await boss.send(queue, { n: 1 }, { id });
    const first = await settled(boss, queue, id);
    assert.equal(first.state, 'completed');
    assert.deepEqual(first.output, { n: 1, by: process.pid });
    await boss.deleteJob(queue, id);
    await boss.send(queue, { n: 1 }, { id });
    const second = await settled(boss, queue, id);
    assert.equal(second.state, 'completed');
    assert.deepEqual(second.output, first.output);
    assert.equal((await ledger.runs(id)).length, 1);
  });

  it('runs a failed job again on the retry pg-boss makes, and completes it once', async () => {
    const queue = await newQueue();
    const handle = ledger.handler();
    const attempts: number[] = [];
    await work(
      queue,
      guardPgBossHandler(
        async (job: PgBoss.Job<Data>, context) => {
          attempts.push(context.attempts);
          if (attempts.length === 1) throw new Error('the mail server is down');
          return await handle(job, context);
        },
        { store },
      ),
    );
    const id = randomUUID();
    await boss.send(queue, { n: 2 }, { id, retryLimit: 2, retryDelay: 0 });
    const job = await settled(boss, queue, id);
    assert.equal(job.state, 'completed');
    assert.equal(job.retryCount, 1);
    assert.deepEqual(attempts, [1, 1], 'the failure released the key: the retry claimed it anew and ran');
    const runs = await ledger.runs(id);
    assert.equal(runs.length, 1);
    assert.equal(await ledger.effect(runs[0]?.key ?? ''), `${id}:${process.pid}`);
  });

  it('fails a job sent again under a used id with other data, without running it', async () => {
    const queue = await newQueue();
    await work(queue, guardPgBossHandler(ledger.handler(), { store }));
    const id = randomUUID();
    await boss.send(queue, { n: 3 }, { id });
    await settled(boss, queue, id);
    await boss.deleteJob(queue, id);
    await boss.send(queue, { n: 30 }, { id, retryLimit: 0 });
    const job = await settled(boss, queue, id);
    assert.equal(job.state, 'failed');
    assert.match(JSON.stringify(job.output), /processed before with other data/);
    assert.equal((await ledger.runs(id)).length, 1);
  });

  it('runs a batch job by job, each once, and replays the whole batch when it comes again', async () => {
    const queue = await newQueue();
    const guarded = guardPgBossHandler(ledger.handler(), { store });
    const batches: PgBoss.Job<Data>[][] = [];
    await work(
      queue,
      async (jobs) => {
        batches.push(jobs);
        return await guarded(jobs);
      },
      { batchSize: 3 },
    );
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    await boss.insert(ids.map((id, n) => ({ id, name: queue, data: { n } })));
    for (const id of ids) assert.equal((await settled(boss, queue, id)).state, 'completed');
    const all = batches.flat();
    assert.deepEqual(
      await guarded(all),
      all.map((job) => ({ n: job.data.n, by: process.pid })),
    );
    for (const id of ids) assert.equal((await ledger.runs(id)).length, 1);
  });

  it('does not run a job that expired while its handler still ran: the retry waits and returns its output', async () => {
    const queue = await newQueue();
    const handle = ledger.handler();
    let running = 0;
    let overlapped = false;
    await work(
      queue,
      guardPgBossHandler(
        async (job: PgBoss.Job<Data>, context) => {
          overlapped ||= running > 0;
          running++;
          // Longer than the job's expiry: pg-boss fails the job and retries it while this still runs.
          await new Promise((resolve) => setTimeout(resolve, 2500));
          running--;
          return await handle(job, context);
        },
        { store, leaseMs: 10_000 },
      ),
    );
    const id = randomUUID();
    await boss.send(queue, { n: 4 }, { id, expireInSeconds: 1, retryLimit: 3, retryDelay: 0 });
    const job = await settled(boss, queue, id);
    assert.equal(job.state, 'completed');
    assert.ok(job.retryCount >= 1, 'pg-boss retried the expired job');
    assert.equal(overlapped, false, 'never two runs at once');
    assert.equal((await ledger.runs(id)).length, 1);
    assert.deepEqual(job.output, { n: 4, by: process.pid });
  });

  describe('a worker killed mid-job: the job expires, pg-boss retries it, another worker takes it', () => {
    const cases = [
      { point: 'before-effect', runs: 2, by: 'the second worker' },
      { point: 'after-effect', runs: 2, by: 'the first worker' },
      { point: 'after-complete', runs: 1, by: 'the first worker' },
    ] as const;
    for (const { point, runs, by } of cases) {
      it(`takes effect once and completes when the worker dies at ${point} (${runs} run${runs > 1 ? 's' : ''}, the effect by ${by})`, async () => {
        const queue = await newQueue();
        const id = randomUUID();
        const leaseMs = 1500;
        await boss.send(queue, { n: 5 }, { id, expireInSeconds: 2, retryLimit: 1, retryDelay: 0 });
        const child = await runChild(workerPath, { queue, schema, namespace, ledger: ledgerTable, leaseMs }, point);
        assert.equal(child.signal, 'SIGKILL');
        const [first] = await ledger.runs(id);
        assert.ok(first, 'the killed worker had taken the job');
        await work(queue, guardPgBossHandler(ledger.handler(), { store, leaseMs }));
        const job = await settled(boss, queue, id);
        assert.equal(job.state, 'completed', JSON.stringify(job.output));
        assert.equal(job.retryCount, 1, 'pg-boss expired the job and retried it');
        const all = await ledger.runs(id);
        assert.equal(all.length, runs);
        assert.deepEqual(
          all.map((run) => run.key),
          all.map(() => first.key),
        );
        const effectBy = by === 'the first worker' ? first.pid : process.pid;
        assert.equal(await ledger.effect(first.key), `${id}:${effectBy}`);
        assert.deepEqual(job.output, { n: 5, by: point === 'after-complete' ? first.pid : process.pid });
      });
    }
  });
});
