import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { isIdempotencyError } from '../../src/core/errors.js';
import type { Entry } from '../../src/workflow/entries.js';
import type { Workflows } from '../../src/workflow/index.js';
import { runKeyOf } from '../../src/workflow/keys.js';
import { runChild as runChildOf } from '../kill-child.js';
import { dropStore, postgresUrl } from '../stores/postgres.factory.js';
import { type EffectsServer, startEffectsServer } from './fixtures/effects-server.js';
import {
  defineOrder,
  LEDGER_TABLE,
  ledgerDdl,
  type OrderInput,
  openApp,
  type Scenario,
  STEPS_TABLE,
  type Variant,
  workflowsOn,
} from './fixtures/order-workflow.js';

const workerPath = new URL('./fixtures/order-crash-worker.ts', import.meta.url).pathname;
const variants: Variant[] = ['postgres', 'sqlite'];

/**
 * Where the child kills itself on the way to completing the order (see order-workflow.ts): before,
 * inside (after the effect, before the step returns) and after each step; for the SQL steps also
 * right after their transaction committed and before the journal recorded them; while the run is
 * suspended on its sleep, and right after it woke.
 */
const completingPoints = [
  'start',
  'create:before',
  'create:effect',
  'create:committed',
  'create:recorded',
  'charge:before',
  'charge:effect',
  'charge:recorded',
  'reserve:before',
  'reserve:effect',
  'reserve:committed',
  'reserve:recorded',
  'sleeping',
  'sleep:after',
  'receipt:before',
  'receipt:effect',
  'receipt:recorded',
];
/** Where the child kills itself when the receipt is refused and the run undoes the reserve, then the charge. */
const failingPoints = [
  'receipt:before',
  'receipt:effect',
  'undo-stock:before',
  'undo-stock:effect',
  'undo-charge:before',
  'undo-charge:effect',
];

/** One run killed again and again: each process takes it over from the last and dies further on. */
const killChain = [
  'create:effect',
  'charge:effect',
  'reserve:committed',
  'sleep:after',
  'receipt:effect',
  'undo-stock:effect',
  'undo-charge:effect',
];

/** The run's outcome, as the child prints it and as this process reads it with its handle. */
type Outcome = { ok: true; value: unknown } | { ok: false; code: string; message: string };

function runChild(
  job: { scenario: Scenario; id: string; input: OrderInput; resume: boolean },
  killAt: string | undefined,
) {
  return runChildOf(workerPath, job, killAt);
}

async function outcomeOf(promise: Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    if (!isIdempotencyError(error)) throw error;
    return { ok: false, code: error.code, message: error.message };
  }
}

/** The outcome with the run's id taken out of its message, to compare runs of different ids. */
const withoutId = (outcome: Outcome, id: string): Outcome =>
  outcome.ok ? outcome : { ...outcome, message: outcome.message.replaceAll(id, '<id>') };

let server: EffectsServer;
let pool: pg.Pool;
let sqliteDir: string;

before(async () => {
  server = await startEffectsServer();
  pool = new pg.Pool({ connectionString: postgresUrl, max: 8 });
  await pool.query(ledgerDdl.postgres);
  sqliteDir = mkdtempSync(join(tmpdir(), 'idem-wf-crash-'));
});

after(async () => {
  await server.close();
  await pool.end();
  rmSync(sqliteDir, { recursive: true, force: true });
});

/** The uninterrupted runs' outcomes, one per variant and path, each run once and shared by the tests. */
const baselines = new Map<string, Promise<Outcome>>();
const baseline = (variant: Variant, failReceipt: boolean): Promise<Outcome> => {
  const name = `${variant}:${failReceipt}`;
  let found = baselines.get(name);
  if (found === undefined) {
    found = scenario(variant, failReceipt, []);
    baselines.set(name, found);
  }
  return found;
};

/**
 * Runs the order in a child killed at `kills[0]`, then in one child after the other, each
 * resuming the run and killed at the next point; recovers it in this process once the last
 * lease ran out; checks that every effect happened once, and gives the outcome. No kills: the
 * child runs the order to its end.
 */
async function scenario(variant: Variant, failReceipt: boolean, kills: string[]): Promise<Outcome> {
  const namespace = `wfc_${randomBytes(5).toString('hex')}`;
  const id = `order-${namespace}`;
  const input: OrderInput = { run: id, order: 'A-7', amount: 4200, qty: 2, failReceipt };
  const where: Scenario = { variant, namespace, dir: sqliteDir, serverUrl: server.url };
  const app = openApp(where, pool);
  const workflows = workflowsOn(app);
  defineOrder(workflows, app, server.url, () => {});
  try {
    let child = await runChild({ scenario: where, id, input, resume: false }, kills[0]);
    for (const [index, killAt] of kills.entries()) {
      if (index > 0) child = await runChild({ scenario: where, id, input, resume: true }, killAt);
      assert.equal(
        child.signal,
        'SIGKILL',
        `the child got to ${killAt} and was killed there (stdout: ${child.stdout})`,
      );
    }
    let outcome: Outcome;
    if (kills.length === 0) {
      assert.equal(child.code, 0, 'the uninterrupted run ends normally');
      outcome = JSON.parse(child.stdout) as Outcome;
      assert.deepEqual(await outcomeOf(workflows.handle(id).result()), outcome);
    } else {
      // The recovery worker: it takes the run over once the dead child's lease (or the sleep) ran out.
      const worker = workflows.worker({ pollMs: 25 }).start();
      try {
        outcome = await outcomeOf(workflows.handle(id).result({ timeoutMs: 30_000 }));
      } finally {
        await worker.stop();
      }
    }
    await checkEffects(workflows, app.ledger, id, failReceipt, kills);
    return withoutId(outcome, id);
  } finally {
    if (variant === 'postgres') {
      const runId = await workflows.status(id).then(
        (view) => view.runId,
        () => undefined,
      );
      if (runId !== undefined) await pool.query(`DELETE FROM ${STEPS_TABLE} WHERE run_id = $1`, [runId]);
      await pool.query(`DELETE FROM ${LEDGER_TABLE} WHERE run = $1`, [id]);
    }
    await app.close();
    if (variant === 'postgres') await dropStore(namespace);
  }
}

/** Every effect once in the ledger and on the API, and the journal: every operation recorded once. */
async function checkEffects(
  workflows: Workflows,
  ledger: { effects(run: string): Promise<string[]> },
  id: string,
  failReceipt: boolean,
  kills: string[],
): Promise<void> {
  const effects = server.effects(id);
  const calls = server.calls(id);
  assert.deepEqual(await ledger.effects(id), failReceipt ? ['order', 'stock', 'unstock'] : ['order', 'stock']);
  assert.deepEqual(
    effects.map((effect) => effect.kind),
    failReceipt ? ['charge', 'refund'] : ['charge', 'receipt'],
    "the API's effects, each once",
  );
  if (failReceipt) {
    assert.equal(effects[1]?.answer.afterUnstock, true, 'the charge was refunded after the stock was put back');
  }
  // A call killed after its effect is made again with the same key (the API answers it without a
  // second effect), except the receipt: reconcile finds it sent. A refused receipt had no effect
  // to find and is sent again. Reconcile asks once per kill that left the receipt's intent open.
  const again = (point: string) => (kills.includes(point) ? 1 : 0);
  const expectedCalls: Record<string, number> = {
    'POST /charge': 1 + again('charge:effect'),
    'POST /receipt': 1 + (failReceipt ? again('receipt:effect') : 0),
  };
  if (failReceipt) expectedCalls['POST /refund'] = 1 + again('undo-charge:effect');
  const reconciled = again('receipt:before') + again('receipt:effect');
  if (reconciled > 0) expectedCalls['GET /effects'] = reconciled;
  assert.deepEqual(calls, expectedCalls, 'the raw calls to the API');

  const view = await workflows.status(id);
  assert.equal(view.state, failReceipt ? 'failed' : 'completed');
  assert.deepEqual(
    view.steps.map((step) => [step.name, step.kind, step.state, step.attempts, step.undone ?? false]),
    [
      ['create', 'transaction', 'done', 1, false],
      ['charge', 'step', 'done', 1, failReceipt],
      ['reserve', 'transaction', 'done', 1, failReceipt],
      ['cool-off', 'sleep', 'done', 1, false],
      ['receipt', 'step', failReceipt ? 'failed' : 'done', 1, false],
    ],
  );

  const key = runKeyOf(id);
  const journal = (await workflows.store.entries(key)).map((raw) => workflows.entryCodec.decode(key, raw).entry);
  const kinds = journal.map(describeEntry);
  const expected = [
    'start',
    'step 0 create',
    'step 1 charge',
    'step 2 reserve',
    'sleep 3 cool-off',
    'intent 4 receipt',
    'step 4 receipt',
  ];
  if (failReceipt) expected.push('failed', 'undo 2 reserve', 'undo 1 charge');
  assert.deepEqual(kinds, expected, 'the journal holds each operation once, in order');
}

function describeEntry(entry: Entry): string {
  switch (entry.t) {
    case 'step':
    case 'intent':
    case 'sleep':
      return `${entry.t} ${entry.op} ${entry.name}`;
    case 'undo':
      return `undo ${entry.op} ${entry.name}${entry.ok ? '' : ' (failed)'}`;
    default:
      return entry.t;
  }
}

describe('durable workflows killed with SIGKILL at every point, recovered by a worker', { concurrency: 6 }, () => {
  for (const variant of variants) {
    it(`runs the order uninterrupted on ${variant}: each effect once, the result the crash runs must match`, async () => {
      const outcome = await baseline(variant, false);
      assert.equal(outcome.ok, true);
    });
    it(`runs the failing order uninterrupted on ${variant}: the undos run in reverse, each once`, async () => {
      const outcome = await baseline(variant, true);
      assert.equal(outcome.ok, false);
    });
    for (const killAt of completingPoints) {
      it(`completes the order on ${variant} after a kill at ${killAt}, each effect once`, async () => {
        assert.deepEqual(await scenario(variant, false, [killAt]), await baseline(variant, false));
      });
    }
    for (const killAt of failingPoints) {
      it(`fails the order on ${variant} after a kill at ${killAt}, its undos run once, in reverse`, async () => {
        assert.deepEqual(await scenario(variant, true, [killAt]), await baseline(variant, true));
      });
    }
    it(`fails the order on ${variant} after ${killChain.length} kills in a row, each process resuming the run, its undos run once`, async () => {
      assert.deepEqual(await scenario(variant, true, killChain), await baseline(variant, true));
    });
  }
});
