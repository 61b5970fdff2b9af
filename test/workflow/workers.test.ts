import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { JournalStore } from '../../src/core/journal.js';
import { type Entry, EntryCodec } from '../../src/workflow/entries.js';
import { Workflows } from '../../src/workflow/index.js';
import { runKeyOf } from '../../src/workflow/keys.js';
import { type Seed, seedsWithFresh, seedTestOptions } from '../random-seeds.js';
import { dropStore as dropPostgres, postgresUrl } from '../stores/postgres.factory.js';
import { clusterNode, dropClusterStore, dropStore as dropRedis } from '../stores/redis.factory.js';
import {
  isAtomicStep,
  type MultiResult,
  openStore,
  type StoreKind,
  tablesOf,
  type WorkerJob,
  workflowIdOf,
} from './fixtures/worker-workflow.js';

/**
 * Several worker processes share one store and work through many runs while the test kills them
 * with SIGKILL at random moments and starts new ones. The claim under test: a run is never run by
 * two processes at once, and nothing is lost; a step that was killed before its result was
 * recorded may run again (its effect is not atomic), and only then.
 */

const seederPath = new URL('./fixtures/worker-seeder.ts', import.meta.url).pathname;
const workerPath = new URL('./fixtures/worker-process.ts', import.meta.url).pathname;

/** Seeds known to pass; IDEM_WORKERS_SEED=<seed> replays one in place of the fresh seed. */
const FIXED_SEEDS = [20_250_601, 433_526_541];
const SEEDS = seedsWithFresh(
  FIXED_SEEDS,
  process.env.IDEM_WORKERS_SEED === undefined ? undefined : Number(process.env.IDEM_WORKERS_SEED),
);

const RUNS = 1000;
const STEPS = 3;
const WORKERS = 4;
/** Kills stop once this share of the runs has finished its last step, or after MAX_KILLS. */
const KILL_UNTIL = 0.9;
const MAX_KILLS = 40;
/** How long the runs may take in all after the seeding, in ms, before the test gives up waiting. */
const FINISH_WITHIN_MS = 150_000;

const STORES: { kind: StoreKind; skip?: string }[] = [
  { kind: 'postgres' },
  { kind: 'redis' },
  {
    kind: 'redis-cluster',
    ...(clusterNode === undefined
      ? { skip: 'set IDEM_REDIS_CLUSTER=host:port of a Redis Cluster node to run the workers on a Cluster' }
      : {}),
  },
];

/** mulberry32: the same kills, in the same order, for the same seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface Child {
  child: ChildProcess;
  pid: number;
  /** The first line it printed (`seeded <n>`, `ready`), or null when it ended first. */
  firstLine: Promise<string | null>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

function spawnFixture(path: string, job: WorkerJob): Child {
  const child = spawn(process.execPath, [...process.execArgv, path, JSON.stringify(job)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  const firstLine = Promise.race([
    lines.next().then((next) => (next.done ? null : next.value)),
    exited.then(() => null),
  ]);
  return { child, pid: child.pid as number, firstLine, exited, stderr: () => stderr };
}

/** The worker processes of one scenario: which were killed, and which ended that the test did not end. */
class WorkerPool {
  readonly killed = new Set<number>();
  readonly unexpected: string[] = [];
  readonly #job: WorkerJob;
  readonly #slots: Child[] = [];
  #stopping = false;

  constructor(job: WorkerJob, size: number) {
    this.#job = job;
    for (let slot = 0; slot < size; slot++) this.#slots.push(this.#start());
  }

  get size(): number {
    return this.#slots.length;
  }

  async kill(slot: number): Promise<void> {
    const victim = this.#slots[slot] as Child;
    this.killed.add(victim.pid);
    victim.child.kill('SIGKILL');
    await victim.exited;
  }

  restart(slot: number): void {
    this.#slots[slot] = this.#start();
  }

  /** Asks every worker to stop (SIGTERM: they finish what they hold) and waits for them. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(
      this.#slots.map(async (worker) => {
        // A worker still starting has no SIGTERM handler yet: the signal would end it at once.
        // It says `ready` once it has one.
        await worker.firstLine;
        worker.child.kill('SIGTERM');
        const timer = setTimeout(() => worker.child.kill('SIGKILL'), 20_000);
        const { code, signal } = await worker.exited;
        clearTimeout(timer);
        if (code !== 0) {
          this.unexpected.push(`worker ${worker.pid} stopped with code ${code} (${signal}): ${worker.stderr()}`);
        }
      }),
    );
  }

  #start(): Child {
    const worker = spawnFixture(workerPath, this.#job);
    void worker.exited.then(({ code, signal }) => {
      if (this.#stopping || this.killed.has(worker.pid)) return;
      this.unexpected.push(`worker ${worker.pid} ended on its own (code ${code}, ${signal}): ${worker.stderr()}`);
    });
    return worker;
  }
}

/** What one scenario did, for the assertions and the closing numbers. */
interface Outcome {
  results: MultiResult[];
  kills: number;
  killed: Set<number>;
  unexpected: string[];
  seedMs: number;
  runMs: number;
}

async function dropScenario(job: WorkerJob): Promise<void> {
  if (job.store === 'postgres') await dropPostgres(job.namespace);
  else if (job.store === 'redis') await dropRedis(job.namespace);
  else await dropClusterStore(job.namespace);
}

/**
 * Seeds the runs, starts the workers, kills and restarts them as the seed says until most runs
 * are done, then waits for every result and stops the workers.
 */
async function runScenario(job: WorkerJob, db: pg.Client, store: JournalStore): Promise<Outcome> {
  const { effects } = tablesOf(job.namespace);
  const seedStartedAt = Date.now();
  const seeder = spawnFixture(seederPath, job);
  assert.equal(await seeder.firstLine, `seeded ${job.runs}`, seeder.stderr());
  assert.equal((await seeder.exited).code, 0, seeder.stderr());
  const startedAt = Date.now();

  const workers = new WorkerPool(job, WORKERS);
  const random = rng(job.seed);
  const between = (lowMs: number, highMs: number) => lowMs + Math.floor(random() * (highMs - lowMs + 1));
  // Counts the runs whose last step has run at least once. Returns done.
  const progress = async () =>
    Number(
      (
        await db.query<{ done: string }>(`SELECT count(DISTINCT run) AS done FROM ${effects} WHERE step = $1`, [
          job.steps - 1,
        ])
      ).rows[0]?.done,
    );
  let kills = 0;
  try {
    while (kills < MAX_KILLS && (await progress()) < KILL_UNTIL * job.runs) {
      await sleep(between(200, 1200));
      const slot = Math.floor(random() * workers.size);
      await workers.kill(slot);
      kills += 1;
      await sleep(between(0, 400));
      workers.restart(slot);
    }
    const observer = new Workflows({ store, leaseMs: job.leaseMs, heartbeatMs: job.heartbeatMs });
    const deadline = startedAt + FINISH_WITHIN_MS;
    const results: MultiResult[] = [];
    for (let run = 0; run < job.runs; run++) {
      const handle = observer.handle<MultiResult>(workflowIdOf(run));
      results.push(await handle.result({ timeoutMs: Math.max(deadline - Date.now(), 1) }));
    }
    const runMs = Date.now() - startedAt;
    return {
      results,
      kills,
      killed: workers.killed,
      unexpected: workers.unexpected,
      seedMs: startedAt - seedStartedAt,
      runMs,
    };
  } finally {
    await workers.stop();
  }
}

/** The step entries of run `run`'s journal, by position: every one that was appended. */
async function journalSteps(store: JournalStore, codec: EntryCodec, run: number): Promise<Entry[][]> {
  const key = runKeyOf(workflowIdOf(run));
  const byOp: Entry[][] = [];
  for (const raw of await store.entries(key)) {
    const { entry } = codec.decode(key, raw);
    if (entry.t !== 'step') continue;
    byOp[entry.op] = [...(byOp[entry.op] ?? []), entry];
  }
  return byOp;
}

/** Rows of `table` (starts or effects) by `run/step`, in the order written: their id and worker pid. */
async function rowsByStep(db: pg.Client, table: string): Promise<Map<string, { id: number; pid: number }[]>> {
  // Every row of the table. Returns id, run, step, worker_pid, in the order written.
  const rows = await db.query<{ id: number; run: number; step: number; worker_pid: number }>(
    `SELECT id, run, step, worker_pid FROM ${table} ORDER BY id`,
  );
  const byStep = new Map<string, { id: number; pid: number }[]>();
  for (const row of rows.rows) {
    const at = `${row.run}/${row.step}`;
    byStep.set(at, [...(byStep.get(at) ?? []), { id: Number(row.id), pid: row.worker_pid }]);
  }
  return byStep;
}

/** What the steps' checks counted. */
interface StepCounts {
  /** Plain steps whose effect was written again after a kill. */
  plainAgain: number;
  /** Executions of atomic steps cut short by a kill and rolled back. */
  atomicRolledBack: number;
}

/**
 * Checks each run's journal and effects: each step recorded once, with the effect row the run
 * returned; an atomic step's effect written once; a step's effect begun again only after the
 * process that began it was killed.
 */
async function checkSteps(job: WorkerJob, outcome: Outcome, db: pg.Client, store: JournalStore): Promise<StepCounts> {
  const { starts, effects } = tablesOf(job.namespace);
  const begun = await rowsByStep(db, starts);
  const written = await rowsByStep(db, effects);
  const codec = new EntryCodec(new Workflows({ store }).engine.codec);
  const counts: StepCounts = { plainAgain: 0, atomicRolledBack: 0 };
  const strays: string[] = [];
  for (const [run, result] of outcome.results.entries()) {
    assert.equal(result.run, run);
    assert.equal(result.effects.length, job.steps, `run ${run} returned one effect per step`);
    const journal = await journalSteps(store, codec, run);
    assert.equal(journal.length, job.steps, `run ${run}: the journal has every step`);
    for (const [step, recorded] of result.effects.entries()) {
      const at = `${run}/${step}`;
      assert.deepEqual(
        (journal[step] ?? []).map((entry) => entry.t === 'step' && entry.ok && [entry.kind, entry.value]),
        [[isAtomicStep(step) ? 'transaction' : 'step', recorded]],
        `run ${run} step ${step} is recorded once in the journal, with the result the run returned`,
      );
      const rows = written.get(at) ?? [];
      const kept = rows.find((row) => row.id === recorded);
      assert.ok(kept !== undefined, `run ${run} step ${step}: its recorded effect row exists`);
      if (isAtomicStep(step)) {
        assert.equal(rows.length, 1, `run ${run} step ${step}: the atomic effect is written once`);
        counts.atomicRolledBack += (begun.get(at)?.length ?? 0) - 1;
      } else {
        counts.plainAgain += rows.length - 1;
      }
      // Only the process whose effect was kept may have begun the step and lived on.
      const survivors = (begun.get(at) ?? []).filter((start) => !outcome.killed.has(start.pid));
      if (survivors.some((start) => start.pid !== kept.pid) || survivors.length > 1) {
        strays.push(`run ${run} step ${step}: begun by ${JSON.stringify(begun.get(at))}, kept from ${kept.pid}`);
      }
    }
  }
  assert.deepEqual(strays, [], 'a step was begun again only after the process that began it was killed');
  const total = [...written.values()].reduce((sum, rows) => sum + rows.length, 0);
  assert.equal(total, job.runs * job.steps + counts.plainAgain, 'no effect row but those of the runs');
  return counts;
}

async function checkOutcome(job: WorkerJob, outcome: Outcome, db: pg.Client, store: JournalStore): Promise<void> {
  const { violations, steps } = tablesOf(job.namespace);
  assert.deepEqual(outcome.unexpected, [], 'no worker ended but the ones the test killed');

  // Every step execution that found its run's lock taken: none, or two processes ran one run at once.
  const overlaps = await db.query(`SELECT run, step, worker_pid FROM ${violations} ORDER BY run, step`);
  assert.deepEqual(overlaps.rows, [], 'no step ran while another process ran a step of the same run');

  const counts = await checkSteps(job, outcome, db, store);
  // The atomic steps' records. Returns rows, runs.
  const recorded = await db.query<{ rows: string; runs: string }>(
    `SELECT count(*) AS rows, count(DISTINCT run_id) AS runs FROM ${steps}`,
  );
  const atomicSteps = Array.from({ length: job.steps }, (_, step) => step).filter(isAtomicStep).length;
  assert.deepEqual(recorded.rows[0], { rows: String(job.runs * atomicSteps), runs: String(job.runs) });

  let maxClaims = 0;
  for (let run = 0; run < job.runs; run++) {
    const record = await store.get(runKeyOf(workflowIdOf(run)));
    maxClaims = Math.max(maxClaims, record?.attempts ?? 0);
  }
  const seconds = outcome.runMs / 1000;
  console.log(
    `[workers] ${job.store}, seed ${job.seed}: ${job.runs} runs of ${job.steps} steps (${atomicSteps} atomic) on ${WORKERS} workers ` +
      `in ${seconds.toFixed(1)} s (${(job.runs / seconds).toFixed(0)} runs/s, the first ${job.leaseMs} ms waiting out the seeder's leases); ` +
      `seeded in ${outcome.seedMs} ms; ${outcome.kills} kills; ${counts.plainAgain} plain steps wrote their effect again after a kill, ` +
      `${counts.atomicRolledBack} atomic ones were cut short and rolled back; ` +
      `most claims of one run: ${maxClaims}`,
  );
}

for (const { kind, skip } of STORES) {
  describe(`workflows on ${WORKERS} worker processes sharing one ${kind} store, killed at random`, () => {
    for (const [index, seed] of SEEDS.entries()) {
      const name = `${index < FIXED_SEEDS.length ? 'fixed' : seed.fresh ? 'fresh' : 'given'} seed ${seed.seed}`;
      it(`${name}: runs ${RUNS} workflows to the end, no run on two processes at once, a step again only after a kill`, {
        timeout: FINISH_WITHIN_MS + 60_000,
        ...(skip === undefined ? seedTestOptions(seed) : { skip }),
      }, async () => {
        if (seed.fresh) console.log(`[workers] fresh seed ${seed.seed}: replay with IDEM_WORKERS_SEED=${seed.seed}`);
        await scenario(kind, seed);
      });
    }
  });
}

async function scenario(kind: StoreKind, seed: Seed): Promise<void> {
  const job: WorkerJob = {
    store: kind,
    namespace: `wm_${randomBytes(4).toString('hex')}`,
    runs: RUNS,
    steps: STEPS,
    lockClass: randomInt(1, 2 ** 31 - 1),
    seed: seed.seed,
    leaseMs: 1000,
    heartbeatMs: 300,
    // Kills are crashes: a run hit by many of them must not be parked as dead.
    maxAttempts: 100,
    concurrency: 20,
    pollMs: 100,
  };
  const { starts, effects, violations, steps } = tablesOf(job.namespace);
  const db = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: 5000 });
  await db.connect();
  const store = await openStore(job);
  try {
    // The tables the steps write (see tablesOf); the atomic steps' records are created by the workers.
    await db.query(
      `CREATE TABLE ${effects} (id serial PRIMARY KEY, run int NOT NULL, step int NOT NULL, worker_pid int NOT NULL)`,
    );
    await db.query(
      `CREATE TABLE ${starts} (id serial PRIMARY KEY, run int NOT NULL, step int NOT NULL, worker_pid int NOT NULL)`,
    );
    await db.query(`CREATE TABLE ${violations} (run int NOT NULL, step int NOT NULL, worker_pid int NOT NULL)`);
    const outcome = await runScenario(job, db, store);
    await checkOutcome(job, outcome, db, store);
  } finally {
    await store.close();
    await db.query(`DROP TABLE IF EXISTS ${starts}, ${effects}, ${violations}, ${steps}`);
    await db.end();
    await dropScenario(job);
  }
}
