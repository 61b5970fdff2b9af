// `idem workflows` as users run it: the built command (run `npm run build` first), against a SQLite
// file whose runs this process starts: completed, failed with an undo, sleeping, cancelled, parked
// dead, and one whose holder stopped.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { type WorkflowContext, Workflows, type WorkflowsOptions } from '../../src/workflow/index.js';
import { type Finished, ROOT, tempDir } from './helpers.js';

const MAIN = join(ROOT, 'dist', 'cli', 'main.js');
if (!existsSync(MAIN)) throw new Error('dist/ is missing: run `npm run build` first.');

const directory = tempDir();
const file = join(directory, 'workflows.db');
const storeUrl = `sqlite:${file}`;
const fixture = (name: string) => join('test', 'cli', 'fixtures', name);

/** Runs the built `idem ...args` to the end. */
function idem(...args: string[]): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Asserts one `idem: ...` line on stderr, no stack trace, and the exit code. */
function assertOneLine(run: Finished, code: number, pattern: RegExp): void {
  assert.equal(run.code, code, `exit code; stderr: ${run.stderr}`);
  assert.match(run.stderr, /^idem: [^\n]+\n$/, 'one line');
  assert.match(run.stderr, pattern);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
}

interface ListedRun {
  id: string;
  workflow: string;
  version: number;
  state: string;
  attempts: number;
  stepsDone: number;
  stepsTotal: number;
  error?: { message: string };
  nextCursor?: string;
}

async function listJson(...args: string[]): Promise<ListedRun[]> {
  const run = await idem('workflows', 'list', '--store', storeUrl, '--json', ...args);
  assert.equal(run.code, 0, run.stderr);
  return run.stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as ListedRun);
}

const store = new SqliteStore({ path: file });
const settings: WorkflowsOptions = { store, leaseMs: 500, heartbeatMs: 0 };
/** The application: it starts every run; the ones of `stuck` hang at step b, as a process that stopped. */
const app = new Workflows(settings);
/** Another process of the application, that recovers what `app` leaves. */
const peer = new Workflows(settings);
/** A process with `maxAttempts: 1`: the first takeover after a stop parks the run as dead. */
const strict = new Workflows({ ...settings, maxAttempts: 1 });

const undone: string[] = [];
async function order(ctx: WorkflowContext, input: { id: string; fail?: boolean; napMs?: number }) {
  const charge = await ctx.step('charge', () => ({ charge: `ch_${input.id}`, amount: 42 }), {
    compensate: (value) => {
      undone.push(value.charge);
    },
  });
  if (input.napMs !== undefined) await ctx.sleep(input.napMs, 'nap');
  if (input.fail) {
    const fail = () => {
      throw new Error(`out of stock for order ${input.id}`);
    };
    await ctx.step('ship', fail, { retries: { maxAttempts: 2, baseMs: 1 } });
  }
  return charge;
}
const hang = () => new Promise<never>(() => {});
const stuckBody = async (ctx: WorkflowContext) => {
  const a = await ctx.step('a', () => 'a by the test');
  const b = await ctx.step('b', hang);
  return { a, b };
};
const orders = app.define('order', order, { version: 2 });
peer.define('order', order, { version: 2 });
const stuck = app.define('stuck', stuckBody);
strict.define('stuck', stuckBody);

const HOUR_MS = 3_600_000;

before(async () => {
  assert.deepEqual(await orders.run('done-1', { id: 'done-1' }), { charge: 'ch_done-1', amount: 42 });
  await orders.run('failed-1', { id: 'failed-1', fail: true }).catch(() => {});
  await orders.start('sleep-1', { id: 'sleep-1', napMs: HOUR_MS });
  await orders.start('cancelled-1', { id: 'cancelled-1', napMs: HOUR_MS });
  await app.drain();
  assert.equal(await app.cancel('cancelled-1', 'customer asked'), true);
  assert.equal(await peer.recoverDue(), 1);
  await peer.drain();

  await stuck.start('dead-1', {});
  await sleep(600);
  assert.equal(await strict.recoverDue(), 1, 'the run whose holder stopped is taken over and parked');
  await strict.drain();
  await stuck.start('stuck-1', {});
  await sleep(600);
  const states = Object.fromEntries((await app.list()).runs.map((run) => [run.id, run.state]));
  assert.deepEqual(states, {
    'done-1': 'completed',
    'failed-1': 'failed',
    'sleep-1': 'sleeping',
    'cancelled-1': 'cancelled',
    'dead-1': 'dead',
    'stuck-1': 'pending',
  });
});
after(async () => {
  await store.close();
  rmSync(directory, { recursive: true, force: true });
});

describe('idem workflows list and show', () => {
  it('lists every run as a table: id, workflow@version, state, attempts, steps done/total, updated', async () => {
    const run = await idem('workflows', 'list', '--store', storeUrl);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^ID\s+WORKFLOW\s+STATE\s+TRIES\s+STEPS\s+UPDATED$/m);
    assert.match(run.stdout, /^done-1\s+order@2\s+completed\s+1\s+1\/1\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/m);
    assert.match(run.stdout, /^failed-1\s+order@2\s+failed\s+1\s+1\/2\s/m);
    assert.match(run.stdout, /^sleep-1\s+order@2\s+sleeping\s+1\s+1\/2\s/m);
    assert.match(run.stdout, /^cancelled-1\s+order@2\s+cancelled\s+2\s+1\/2\s/m);
    assert.match(run.stdout, /^dead-1\s+stuck@1\s+dead\s+2\s+1\/1\s/m);
    assert.match(run.stdout, /^stuck-1\s+stuck@1\s+pending\s+1\s+1\/1\s/m);
  });

  it('lists as JSON lines, by state, and page by page with a cursor', async () => {
    const all = await listJson();
    assert.equal(all.length, 6);
    const dead = all.find((run) => run.id === 'dead-1');
    assert.equal(dead?.workflow, 'stuck');
    assert.equal(dead?.attempts, 2);
    assert.match(dead?.error?.message ?? '', /attempt limit/);

    assert.deepEqual(
      (await listJson('--state', 'dead')).map((run) => run.id),
      ['dead-1'],
    );
    assert.deepEqual(await listJson('--state', 'running'), []);

    const first = await listJson('--limit', '4');
    const cursor = first.at(-1)?.nextCursor;
    assert.equal(first.length, 5, 'four runs and the cursor');
    assert.ok(cursor !== undefined);
    const rest = await listJson('--cursor', cursor);
    const ids = [...first, ...rest].flatMap((run) => (run.id === undefined ? [] : [run.id]));
    assert.deepEqual(ids.toSorted(), all.map((run) => run.id).toSorted(), 'every run once');

    const table = await idem('workflows', 'list', '--store', storeUrl, '--limit', '1', '--state', 'failed');
    assert.match(table.stdout, /^failed-1\s+order@2\s+failed/m);
  });

  it('refuses an unknown --state or --limit with a usage error', async () => {
    assertOneLine(
      await idem('workflows', 'list', '--store', storeUrl, '--state', 'done'),
      2,
      /--state "done": use one of running, pending/,
    );
    assertOneLine(
      await idem('workflows', 'list', '--store', storeUrl, '--limit', '0'),
      2,
      /--limit "0": use a whole number/,
    );
  });

  it('shows a failed run: its error, the step that failed, and the undo of the step before', async () => {
    const run = await idem('workflows', 'show', 'failed-1', '--store', storeUrl);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^state {7}failed$/m);
    assert.match(run.stdout, /^error {7}Error: out of stock for order failed-1$/m);
    assert.match(run.stdout, /^input {7}\{"id":"failed-1","fail":true\}$/m);
    assert.match(run.stdout, /^#\s+STEP\s+KIND\s+STATE\s+TRIES\s+TOOK\s+VALUE OR ERROR$/m);
    assert.match(
      run.stdout,
      /^0\s+charge\s+step\s+done, undone\s+1\s+\d+ms\s+\{"charge":"ch_failed-1","amount":42\}$/m,
    );
    assert.match(run.stdout, /^1\s+ship\s+step\s+failed\s+2\s+\S+\s+Error: out of stock for order failed-1$/m);
    assert.deepEqual(undone.toSorted(), ['ch_cancelled-1', 'ch_failed-1']);

    const json = JSON.parse((await idem('workflows', 'show', 'failed-1', '--store', storeUrl, '--json')).stdout);
    assert.equal(json.state, 'failed');
    assert.deepEqual(json.input, { id: 'failed-1', fail: true });
    assert.equal(json.steps[0].undone, true);
    assert.deepEqual(json.steps[0].value, { charge: 'ch_failed-1', amount: 42 });
    assert.equal(json.steps[1].error.message, 'out of stock for order failed-1');
    assert.equal(json.steps[1].attempts, 2);
  });

  it('shows a sleeping run with the time it wakes, a completed one with its result, a dead one with why', async () => {
    const sleeping = await idem('workflows', 'show', 'sleep-1', '--store', storeUrl);
    assert.match(
      sleeping.stdout,
      /^1\s+nap\s+sleep\s+waiting\s+1\s+-\s+wakes \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(in (59m|1h)\)$/m,
    );
    const json = JSON.parse((await idem('workflows', 'show', 'sleep-1', '--store', storeUrl, '--json')).stdout);
    assert.equal(json.steps[1].kind, 'sleep');
    assert.ok(Date.parse(json.steps[1].wakeAt) > Date.now() + HOUR_MS / 2);

    const done = await idem('workflows', 'show', 'done-1', '--store', storeUrl);
    assert.match(done.stdout, /^result {6}\{"charge":"ch_done-1","amount":42\}$/m);

    const dead = await idem('workflows', 'show', 'dead-1', '--store', storeUrl);
    assert.match(dead.stdout, /^state {7}dead$/m);
    assert.match(dead.stdout, /^error {7}IdempotencyError \(WORKFLOW_DEAD\): the run stopped 1 times?/m);
    assert.match(dead.stdout, /^lease {7}parked: idem workflows resume continues it/m);
  });

  it('says in one line that a run does not exist (exit 1)', async () => {
    assertOneLine(await idem('workflows', 'show', 'nope', '--store', storeUrl), 1, /no workflow run with id "nope"/);
  });
});

describe('idem workflows cancel and resume', () => {
  it('cancel: a finished run is left as it is (exit 3), a cancelled one is cancelled already (exit 0)', async () => {
    assertOneLine(
      await idem('workflows', 'cancel', 'done-1', '--store', storeUrl),
      3,
      /done-1 has finished \(completed\): there is nothing to cancel/,
    );
    const again = await idem('workflows', 'cancel', 'cancelled-1', '--store', storeUrl);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^cancelled-1 was cancelled already: customer asked\.$/m);
    assertOneLine(await idem('workflows', 'cancel', 'nope', '--store', storeUrl), 1, /no workflow run with id "nope"/);
  });

  it('cancel: a sleeping run is woken for a worker to end it, and show says it is asked to stop', async () => {
    const run = await idem('workflows', 'cancel', 'sleep-1', '--store', storeUrl, '--reason', 'address was wrong');
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^asked sleep-1 to stop \("address was wrong"\): it was sleeping; a worker/m);
    const shown = await idem('workflows', 'show', 'sleep-1', '--store', storeUrl);
    assert.match(shown.stdout, /^state {7}pending$/m);
    assert.match(shown.stdout, /^cancelling {2}asked to stop: address was wrong$/m);
    const json = JSON.parse((await idem('workflows', 'show', 'sleep-1', '--store', storeUrl, '--json')).stdout);
    assert.equal(json.cancelling, 'address was wrong');
  });

  it('resume: a run that is not parked is left as it is (exit 3); a dead one is made due', async () => {
    assertOneLine(
      await idem('workflows', 'resume', 'stuck-1', '--store', storeUrl),
      3,
      /stuck-1 is pending, not parked/,
    );
    assertOneLine(
      await idem('workflows', 'resume', 'done-1', '--store', storeUrl),
      3,
      /done-1 has finished \(completed\)/,
    );
    const run = await idem('workflows', 'resume', 'dead-1', '--store', storeUrl);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^resumed dead-1, which was dead: a worker/m);
    assert.equal((await app.status('dead-1')).state, 'pending');
  });
});

/** A running `idem workflows worker`, its output read as it comes. */
class RunningWorker {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [MAIN, 'workflows', 'worker', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.on('data', (chunk: Buffer) => {
      this.stdout += chunk;
    });
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }

  async waitFor(pattern: RegExp, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pattern.test(this.stdout)) {
      if (Date.now() > deadline || this.child.exitCode !== null) {
        throw new Error(`no ${pattern} from the worker.\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      }
      await sleep(20);
    }
  }
}

describe('idem workflows worker', () => {
  it('takes over the runs left to it, finishes or cancels each, logs them, and stops on SIGTERM', async () => {
    const worker = new RunningWorker([
      '--store',
      storeUrl,
      '--module',
      fixture('workflows-module.mjs'),
      '--poll-ms',
      '100',
    ]);
    try {
      await worker.waitFor(
        /^idem: workflows worker on sqlite:\S+ runs stuck@1, order@2 \(concurrency 10, poll 100ms\)/m,
      );
      await worker.waitFor(/^idem: stuck-1 completed after /m);
      await worker.waitFor(/^idem: dead-1 completed after /m);
      await worker.waitFor(/^idem: sleep-1 cancelled \(its undos ran\) after /m);
    } finally {
      worker.child.kill('SIGTERM');
    }
    assert.equal(await worker.exited, 0, worker.stderr);
    assert.match(worker.stdout, /^idem: took stuck-1 \(stuck@1\), attempt 2$/m);
    assert.match(worker.stdout, /^idem: took dead-1 \(stuck@1\), attempt 3$/m);
    assert.match(worker.stdout, /^idem: took sleep-1 \(order@2\), attempt 2$/m);
    assert.match(worker.stderr, /^idem: SIGTERM: taking no more runs; 0 run\(s\) in progress\.$/m);
    assert.match(worker.stderr, /^idem: stopped: 3 taken, (2 completed, 1 cancelled|1 cancelled, 2 completed)\.$/m);

    for (const id of ['stuck-1', 'dead-1']) {
      const view = await app.status(id);
      assert.equal(view.state, 'completed');
      const result = view.result as { a: string; b: { by: string; pid: number } };
      assert.equal(result.a, 'a by the test', 'step a was recorded by the test and not run again');
      assert.equal(result.b.by, 'worker');
      assert.equal(result.b.pid, worker.child.pid);
    }
    const cancelled = await app.status('sleep-1');
    assert.equal(cancelled.state, 'cancelled');
    assert.match(cancelled.error?.message ?? '', /address was wrong/);
    assert.equal(cancelled.steps[0]?.undone, true, 'the worker ran the undo of the charge');
    assert.ok(!undone.includes('ch_sleep-1'), 'not this process');
  });

  it('says in one line what is wrong with --module: missing, without register, TypeScript', async () => {
    const worker = (...args: string[]) => idem('workflows', 'worker', '--store', storeUrl, ...args);
    assertOneLine(await worker(), 2, /--module is required/);
    assertOneLine(
      await worker('--module', './nowhere/workflows.js'),
      2,
      /--module \.\/nowhere\/workflows\.js: there is no file \/.*\/nowhere\/workflows\.js\./,
    );
    assertOneLine(
      await worker('--module', fixture('workflows-no-register.mjs')),
      2,
      /exports no register\(workflows\) function/,
    );
    assertOneLine(
      await worker('--module', fixture('workflows-module.ts')),
      2,
      /is TypeScript, .*compile it to \.js .*or run the command under tsx/,
    );
    assertOneLine(
      await worker('--module', fixture('workflows-module.mjs'), '--concurrency', 'all'),
      2,
      /--concurrency "all"/,
    );
  });
});

describe('idem workflows on stores without journals', () => {
  it('refuses DynamoDB and memory: in one line', async () => {
    assertOneLine(
      await idem('workflows', 'list', '--store', 'dynamodb://127.0.0.1:4567/idem'),
      2,
      /DynamoDB store, which keeps no journals/,
    );
    assertOneLine(
      await idem('workflows', 'worker', '--store', 'memory:', '--module', fixture('workflows-module.mjs')),
      2,
      /memory: lives inside one process/,
    );
  });
});
