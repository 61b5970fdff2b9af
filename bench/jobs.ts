/**
 * What the BullMQ guard costs per job: a bare BullMQ processor against the same processor wrapped
 * by `guardBullProcessor`, each draining the same number of jobs from a queue of its own on the
 * same Redis, at 1 job in flight and at `CONCURRENCY`. The processor does no work of its own
 * (it returns a small object), so the difference is the guard: a claim and a completion in the
 * store per job (a fingerprint of the job's data, the return value serialized).
 *
 *   bare     new Worker(queue, async (job) => ({ i: job.data.i }))
 *   guarded  new Worker(queue, guardBullProcessor(async (job) => ({ i: job.data.i }), { store }))
 *
 * Each round adds the jobs first (addBulk), then times the worker from its start to the last
 * `completed` event. Rounds alternate bare and guarded; the median round is reported.
 */
import { randomBytes } from 'node:crypto';
import { type Job, type Processor, Queue, Worker } from 'bullmq';
import { guardBullProcessor } from '../src/messaging/index.js';
import { type Align, table } from './report.js';
import { describe, openTarget, type StoreName, servers, Unreachable } from './store-targets.js';

/** The stores the guard is measured on: Redis (beside the queue), and the SQL stores a team may already run. */
export const JOBS_STORES = ['redis', 'postgres', 'sqlite'] as const;
/** Jobs in flight in the second measurement (the worker's `concurrency`). */
export const CONCURRENCY = 16;

/** One variant's median round. */
export interface JobsMeasurement {
  /** Jobs drained per second. */
  jobsPerSec: number;
  /** Wall time per job, in ms (1000 / jobsPerSec). */
  msPerJob: number;
  /** Jobs that failed in that round (0 expected). */
  failed: number;
}

export interface JobsRow {
  store: StoreName;
  where?: string;
  /** Jobs in flight: the worker's concurrency. */
  concurrency: number;
  bare?: JobsMeasurement;
  guarded?: JobsMeasurement;
  skipped?: string;
}

export interface JobsReport {
  /** Jobs drained per round. */
  jobs: number;
  /** Rounds per variant. */
  rounds: number;
  /** Where BullMQ's Redis is. */
  redis: string;
  rows: JobsRow[];
}

export interface JobsBenchOptions {
  /** Which stores to measure the guard on (those of `JOBS_STORES` in the list). */
  stores: readonly StoreName[];
  /** Fewer jobs and one round: a smoke run. */
  quick: boolean;
  log: (line: string) => void;
}

/** Measures the BullMQ guard against a bare BullMQ processor (see the file's header). */
export async function benchJobs({ stores, quick, log }: JobsBenchOptions): Promise<JobsReport> {
  const jobs = quick ? 300 : 3000;
  const rounds = quick ? 1 : 3;
  const { hostname, port } = new URL(servers.redis);
  const connection = { host: hostname, port: Number(port || 6379) };
  const rows: JobsRow[] = [];
  for (const name of JOBS_STORES.filter((store) => stores.includes(store))) {
    log(`  jobs: BullMQ guard on ${name}`);
    rows.push(...(await benchOne(name, { connection, jobs, rounds })));
  }
  return { jobs, rounds, redis: `${connection.host}:${connection.port}`, rows };
}

interface Run {
  connection: { host: string; port: number };
  jobs: number;
  rounds: number;
}

async function benchOne(name: StoreName, run: Run): Promise<JobsRow[]> {
  let target: Awaited<ReturnType<typeof openTarget>>;
  try {
    target = await openTarget(name);
  } catch (error) {
    const skipped = error instanceof Unreachable ? error.message : describe(error);
    return [1, CONCURRENCY].map((concurrency) => ({ store: name, concurrency, skipped }));
  }
  const rows: JobsRow[] = [];
  try {
    const work = async (job: Job<{ i: number }>) => ({ i: job.data.i });
    for (const concurrency of [1, CONCURRENCY]) {
      const bare: Round[] = [];
      const guarded: Round[] = [];
      for (let round = 0; round < run.rounds; round++) {
        bare.push(await drain(run, concurrency, work));
        // A consumer per round: every job's key is new, as in production.
        const consumer = `bench-${randomBytes(4).toString('hex')}`;
        guarded.push(await drain(run, concurrency, guardBullProcessor(work, { store: target.store, consumer })));
      }
      rows.push({ store: name, where: target.where, concurrency, bare: median(bare), guarded: median(guarded) });
    }
  } catch (error) {
    rows.push({ store: name, concurrency: 0, skipped: describe(error) });
  } finally {
    await target.close();
  }
  return rows;
}

interface Round {
  elapsedMs: number;
  jobs: number;
  failed: number;
}

/** Adds `run.jobs` jobs to a new queue, then times a worker draining them. */
async function drain(run: Run, concurrency: number, processor: Processor): Promise<Round> {
  const queue = new Queue(`idem-bench-jobs-${randomBytes(4).toString('hex')}`, { connection: run.connection });
  const worker = new Worker(queue.name, processor, { connection: run.connection, concurrency, autorun: false });
  try {
    await queue.addBulk(
      Array.from({ length: run.jobs }, (_, i) => ({
        name: 'job',
        data: { i },
        opts: { removeOnComplete: true, removeOnFail: true },
      })),
    );
    await worker.waitUntilReady();
    let completed = 0;
    let failed = 0;
    const drained = new Promise<void>((resolve) => {
      const settle = () => {
        if (completed + failed === run.jobs) resolve();
      };
      worker.on('completed', () => {
        completed++;
        settle();
      });
      worker.on('failed', () => {
        failed++;
        settle();
      });
    });
    const startedMs = performance.now();
    void worker.run();
    await drained;
    return { elapsedMs: performance.now() - startedMs, jobs: run.jobs, failed };
  } finally {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

function median(rounds: Round[]): JobsMeasurement {
  const sorted = [...rounds].sort((a, b) => a.elapsedMs - b.elapsedMs);
  const middle = sorted[Math.floor(sorted.length / 2)] as Round;
  const jobsPerSec = (middle.jobs * 1000) / middle.elapsedMs;
  return { jobsPerSec, msPerJob: 1000 / jobsPerSec, failed: middle.failed };
}

const int = (value: number | undefined) =>
  value === undefined || !Number.isFinite(value) ? '-' : Math.round(value).toLocaleString('en-US');
const ms = (value: number | undefined) => (value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(3));

/** The report's text: one row per store and concurrency. */
export function jobsSection(report: JobsReport): string {
  const out = [
    `JOBS: BullMQ on Redis ${report.redis}, ${report.jobs.toLocaleString('en-US')} jobs per round drained by one worker, median of ${report.rounds} round(s), bare and guarded in turns;`,
    'bare = a processor that returns { i }; guarded = the same through guardBullProcessor (claim + complete per job in the store);',
    `in flight = the worker's concurrency; overhead = guarded ms per job - bare ms per job (wall time: at ${CONCURRENCY} in flight, the throughput cost).`,
    '',
  ];
  const align: Align[] = ['left', 'right', 'right', 'right', 'right', 'right', 'right'];
  const rows = report.rows.map((row) => {
    if (row.skipped !== undefined)
      return [row.store, String(row.concurrency), `skipped: ${row.skipped}`, '', '', '', ''];
    const bare = row.bare?.msPerJob;
    const guarded = row.guarded?.msPerJob;
    const ratio = bare !== undefined && guarded !== undefined ? guarded / bare : Number.NaN;
    return [
      row.store,
      String(row.concurrency),
      int(row.bare?.jobsPerSec),
      int(row.guarded?.jobsPerSec),
      ms(guarded !== undefined && bare !== undefined ? guarded - bare : undefined),
      Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : '-',
      String((row.bare?.failed ?? 0) + (row.guarded?.failed ?? 0)),
    ];
  });
  out.push(
    table(
      ['store', 'in flight', 'bare jobs/s', 'guarded jobs/s', 'overhead ms/job', 'x bare time', 'failed'],
      rows,
      align,
    ),
  );
  return out.join('\n');
}
