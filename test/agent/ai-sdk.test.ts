import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateText, stepCountIs, streamText } from 'ai';
import SqliteDatabase from 'better-sqlite3';
import {
  agentWorkflow,
  durableGenerateText,
  guardedCall,
  guardTool,
  guardTools,
  type ToolCallContext,
  toolCallContext,
} from '../../src/agent/index.js';
import { isIdempotencyError } from '../../src/core/errors.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { Workflows } from '../../src/workflow/index.js';
import { expectedAnswer, type Ledger, ledgerTools, scriptedModel } from './fixtures/ai-sdk-agent.js';

let dir: string;
let db: SqliteDatabase.Database;
let store: SqliteStore;

/** A ledger in a SQLite file: `effects` keeps one row per key, `attempts` one per time a tool wrote. */
function sqliteLedger(run: string): Ledger & { rows(): number; attempts(): number } {
  return {
    async write(key, tool, args) {
      db.prepare('INSERT INTO attempts (run, tool) VALUES (?, ?)').run(run, tool);
      db.prepare('INSERT INTO effects (key, run, tool, args) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO NOTHING').run(
        key,
        run,
        tool,
        JSON.stringify(args),
      );
    },
    rows: () => (db.prepare('SELECT count(*) AS n FROM effects WHERE run = ?').get(run) as { n: number }).n,
    attempts: () => (db.prepare('SELECT count(*) AS n FROM attempts WHERE run = ?').get(run) as { n: number }).n,
  };
}

const run = () => `run-${randomBytes(4).toString('hex')}`;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'idem-agent-'));
  db = new SqliteDatabase(join(dir, 'ledger.db'));
  db.exec('CREATE TABLE effects (key TEXT PRIMARY KEY, run TEXT, tool TEXT, args TEXT)');
  db.exec('CREATE TABLE attempts (run TEXT, tool TEXT)');
  store = new SqliteStore({ path: join(dir, 'idem.db') });
});

after(async () => {
  await store.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('guardTools outside a durable run', () => {
  it('runs no tool again when generateText is retried with the same runId, and answers the same', async () => {
    const runId = run();
    const ledger = sqliteLedger(runId);
    const turns: number[] = [];
    const model = scriptedModel((turn) => {
      turns.push(turn);
    });
    const tools = guardTools(ledgerTools(ledger), { store, runId, readOnly: ['lookup'] });
    const first = await generateText({ model, tools, prompt: 'refund A-7', stopWhen: stepCountIs(5) });
    const second = await generateText({ model, tools, prompt: 'refund A-7', stopWhen: stepCountIs(5) });
    assert.equal(first.text, expectedAnswer);
    assert.equal(second.text, first.text);
    assert.equal(ledger.attempts(), 3, 'charge, ticket and notify each ran once across both runs');
    assert.equal(ledger.rows(), 3);
    assert.deepEqual(turns, [0, 1, 2, 0, 1, 2], 'outside a durable run the model is asked again');
  });

  it("with keyBy 'args' recognises a call whose id changed in the retry", async () => {
    const runId = run();
    const ledger = sqliteLedger(runId);
    const model = scriptedModel(
      () => {},
      () => `call_${randomBytes(4).toString('hex')}`,
    );
    const tools = guardTools(ledgerTools(ledger), { store, runId, keyBy: 'args' });
    const first = await generateText({ model, tools, prompt: 'refund A-7', stopWhen: stepCountIs(5) });
    const second = await generateText({ model, tools, prompt: 'refund A-7', stopWhen: stepCountIs(5) });
    assert.equal(second.text, first.text);
    assert.equal(ledger.attempts(), 3);
  });

  it("with keyBy 'callId' runs a call again whose id changed (the id is the key)", async () => {
    const runId = run();
    const ledger = sqliteLedger(runId);
    const model = scriptedModel(
      () => {},
      () => `call_${randomBytes(4).toString('hex')}`,
    );
    const tools = guardTools(ledgerTools(ledger), { store, runId });
    await generateText({ model, tools, prompt: 'refund A-7', stopWhen: stepCountIs(5) });
    await generateText({ model, tools, prompt: 'refund A-7', stopWhen: stepCountIs(5) });
    assert.equal(ledger.attempts(), 6);
  });

  it('keeps runs apart: another runId runs the tools again', async () => {
    const ledger = sqliteLedger(run());
    const model = scriptedModel(() => {});
    for (const runId of [run(), run()]) {
      await generateText({
        model,
        tools: guardTools(ledgerTools(ledger), { store, runId }),
        prompt: 'refund A-7',
        stopWhen: stepCountIs(5),
      });
    }
    assert.equal(ledger.attempts(), 6);
    assert.equal(ledger.rows(), 6, 'each run had keys of its own');
  });

  it('runs parallel calls of one tool with distinct ids each once, and concurrent retries of one call once', async () => {
    const runId = run();
    let runs = 0;
    const seen: (ToolCallContext | undefined)[] = [];
    const slow = guardTool(
      {
        name: 'refund',
        execute: async (args: { cents: number }) => {
          runs++;
          seen.push(toolCallContext());
          await new Promise((resolve) => setTimeout(resolve, 20));
          return { refunded: args.cents };
        },
      },
      { store, runId },
    );
    const results = await Promise.all([
      slow.execute({ cents: 1 }, { callId: 'a' }),
      slow.execute({ cents: 2 }, { callId: 'b' }),
      slow.execute({ cents: 1 }, { callId: 'a' }),
    ]);
    assert.deepEqual(results, [{ refunded: 1 }, { refunded: 2 }, { refunded: 1 }]);
    assert.equal(runs, 2);
    assert.notEqual(seen[0]?.key, seen[1]?.key);
  });

  it('refuses the same call id with other arguments', async () => {
    const runId = run();
    await guardedCall({ store, runId, tool: 'refund', callId: 'a', args: { cents: 1 } }, () => 1);
    await assert.rejects(
      guardedCall({ store, runId, tool: 'refund', callId: 'a', args: { cents: 2 } }, () => 2),
      (error) => isIdempotencyError(error, 'FINGERPRINT_MISMATCH'),
    );
  });

  it('says what to pass when a call has neither a run nor a runId', async () => {
    await assert.rejects(
      guardedCall({ store, tool: 'refund', callId: 'a', args: {} }, () => 1),
      (error) => isIdempotencyError(error, 'INVALID_OPTIONS') && /runId/.test((error as Error).message),
    );
  });
});

describe('durable AI SDK runs in one process', () => {
  it('records every turn and call: starting the run again sends nothing to the model and runs no tool', async () => {
    const workflows = new Workflows({ store });
    const id = run();
    const ledger = sqliteLedger(id);
    const turns: number[] = [];
    const agent = durableGenerateText(workflows, `support-${id}`, {
      generateText,
      model: scriptedModel((turn) => {
        turns.push(turn);
      }),
      tools: ledgerTools(ledger),
      readOnly: ['lookup'],
      settings: { stopWhen: stepCountIs(5) },
    });
    const answer = await agent.run(id, { prompt: 'refund A-7' });
    assert.equal(answer.text, expectedAnswer);
    assert.equal(answer.steps, 3);
    assert.deepEqual(await agent.run(id, { prompt: 'refund A-7' }), answer);
    assert.deepEqual(turns, [0, 1, 2]);
    assert.equal(ledger.attempts(), 3);
    const view = await workflows.status(id);
    assert.deepEqual(
      view.steps.map((step) => step.name),
      ['model:0', 'tool:charge:call_0_0', 'tool:ticket:call_0_1', 'model:1', 'tool:notify:call_1_0', 'model:2'],
    );
  });

  it('records a streamed turn whole and gives the same answer as generateText', async () => {
    const workflows = new Workflows({ store });
    const id = run();
    const ledger = sqliteLedger(id);
    const streamed = agentWorkflow(workflows, `stream-${id}`, async (agent, input: { prompt: string }) => {
      const result = streamText({
        model: agent.model(scriptedModel(() => {})),
        tools: agent.tools(ledgerTools(ledger), { readOnly: ['lookup'] }),
        prompt: input.prompt,
        stopWhen: stepCountIs(5),
        maxRetries: 0,
      });
      return await result.text;
    });
    assert.equal(await streamed.run(id, { prompt: 'refund A-7' }), expectedAnswer);
    const view = await workflows.status(id);
    assert.equal(view.steps.filter((step) => step.name.startsWith('model:')).length, 3);
    assert.equal(ledger.attempts(), 3);
  });
});
