import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { runChild as runChildOf } from '../kill-child.js';
import { dropStore, postgresUrl } from '../stores/postgres.factory.js';
import { expectedAnswer } from './fixtures/ai-sdk-agent.js';
import { ddl, type Mode, openAgent } from './fixtures/ai-sdk-durable.js';

const workerPath = new URL('./fixtures/ai-sdk-crash-worker.ts', import.meta.url).pathname;

/**
 * Where the child kills itself: before and inside each model turn (after the model answered,
 * before the turn is recorded), and before and inside the tool calls (after the effect, before
 * the call is recorded); charge and ticket run in parallel in turn 0.
 */
const killPoints = [
  'model:0:before',
  'model:0:effect',
  'tool:charge:before',
  'tool:charge:effect',
  'tool:ticket:effect',
  'model:1:effect',
  'tool:notify:before',
  'tool:notify:effect',
  'model:2:effect',
];

function runChild(job: { namespace: string; mode: Mode; id: string; resume: boolean }, killAt?: string) {
  return runChildOf(workerPath, job, killAt);
}

let pool: pg.Pool;
const namespace = `agent_${randomBytes(5).toString('hex')}`;

before(async () => {
  pool = new pg.Pool({ connectionString: postgresUrl, max: 4 });
  await pool.query(ddl);
});

after(async () => {
  await pool.end();
  await dropStore(namespace);
});

/** Model calls per turn of the run, and effect rows and tool attempts per tool. */
async function counts(id: string) {
  const turns = await pool.query<{ turn: number; n: string }>(
    'SELECT turn, count(*) AS n FROM agent_model_calls WHERE run = $1 GROUP BY turn ORDER BY turn',
    [id],
  );
  const effects = await pool.query<{ tool: string; n: string }>(
    'SELECT tool, count(*) AS n FROM agent_effects WHERE run = $1 GROUP BY tool ORDER BY tool',
    [id],
  );
  return {
    turns: Object.fromEntries(turns.rows.map((row) => [row.turn, Number(row.n)])),
    effects: Object.fromEntries(effects.rows.map((row) => [row.tool, Number(row.n)])),
  };
}

/**
 * Runs the agent in a child killed at `kills[0]`, then in one child after the other, each taking
 * the run over and killed at the next point; this process resumes it once the last lease ran
 * out; gives the answer and what the run cost.
 */
async function scenario(mode: Mode, kills: string[]) {
  const id = `run-${randomBytes(5).toString('hex')}`;
  let child = await runChild({ namespace, mode, id, resume: false }, kills[0]);
  for (const [index, killAt] of kills.entries()) {
    if (index > 0) child = await runChild({ namespace, mode, id, resume: true }, killAt);
    assert.equal(child.signal, 'SIGKILL', `the child got to ${killAt} and was killed there (stdout: ${child.stdout})`);
  }
  let answer: unknown;
  if (kills.length === 0) {
    assert.equal(child.code, 0);
    answer = JSON.parse(child.stdout);
  } else {
    const app = openAgent(namespace, mode, () => {});
    const worker = app.workflows.worker({ pollMs: 25 }).start();
    try {
      answer = await app.workflows.handle(id).result({ timeoutMs: 30_000 });
    } finally {
      await worker.stop();
      await app.close();
    }
  }
  // As JSON, as the child printed it: the record keeps `undefined` fields that JSON drops.
  return { answer: JSON.parse(JSON.stringify(answer)) as unknown, ...(await counts(id)) };
}

/** Each effect once; each turn sent once, but for a turn killed after the model answered and before it was recorded. */
function assertOnce(result: Awaited<ReturnType<typeof scenario>>, kills: string[]) {
  assert.deepEqual(result.effects, { charge: 1, notify: 1, ticket: 1 });
  const expected: Record<string, number> = { 0: 1, 1: 1, 2: 1 };
  for (const kill of kills) {
    const turn = /^model:(\d):effect$/.exec(kill)?.[1];
    if (turn !== undefined) expected[turn] = (expected[turn] ?? 0) + 1;
  }
  assert.deepEqual(result.turns, expected);
}

for (const mode of ['generate', 'stream'] as const) {
  describe(`a durable ${mode}Text agent killed with SIGKILL`, () => {
    let baseline: Awaited<ReturnType<typeof scenario>>;

    it('answers, uninterrupted, with every tool effect once and every turn sent once', async () => {
      baseline = await scenario(mode, []);
      assert.equal((baseline.answer as { text: string }).text, expectedAnswer);
      assertOnce(baseline, []);
    });

    for (const point of killPoints) {
      it(`resumed after a kill at ${point}: effects once, no finished turn sent again, the same answer`, async () => {
        const result = await scenario(mode, [point]);
        assertOnce(result, [point]);
        assert.deepEqual(result.answer, baseline.answer);
      });
    }

    it('resumed through a chain of kills, one process after the other', async () => {
      const kills = ['tool:charge:effect', 'model:1:effect', 'tool:notify:effect', 'model:2:effect'];
      const result = await scenario(mode, kills);
      assertOnce(result, kills);
      assert.deepEqual(result.answer, baseline.answer);
    });
  });
}
