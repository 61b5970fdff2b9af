import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tool } from '@openai/agents';
import { z } from 'zod';
import { toolCallContext } from '../../src/agent/guard.js';
import { guardOpenAITools, runOpenAIAgent } from '../../src/agent/openai/index.js';
import { isIdempotencyError } from '../../src/core/errors.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { Workflows } from '../../src/workflow/index.js';
import { runChild as runChildOf } from '../kill-child.js';
import { openLedger, supportAgents, supportWorkflows } from './fixtures/openai-support.js';

const workerPath = new URL('./fixtures/openai-support-worker.ts', import.meta.url).pathname;

interface Answer {
  answer: string;
  agent: string;
}

function runChild(job: { storePath: string; ledgerPath: string; id: string; resume: boolean }, killAt?: string) {
  return runChildOf(workerPath, job, killAt);
}

/** Where a child kills itself: before and inside each model turn, before and inside tool calls, inside the handoff, after the agent's last turn. */
const killPoints = [
  'model:0:before',
  'model:0:answered',
  'tool:refund:before',
  'tool:refund:effect',
  'tool:file_ticket:effect',
  'model:1:answered',
  'tool:send_note:effect',
  'model:2:before',
  'model:2:answered',
  'handoff:effect',
  'model:3:before',
  'model:3:answered',
  'finished',
];

const effectsOnce = [
  { tool: 'file_ticket', args: JSON.stringify({ title: 'late delivery of A-1' }) },
  { tool: 'refund', args: JSON.stringify({ order: 'A-1', cents: 500 }) },
  { tool: 'send_note', args: JSON.stringify({ text: 'customer told: refunded 500 cents on A-1' }) },
];

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'idem-oai-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('a durable OpenAI agent run killed with SIGKILL and resumed', () => {
  let baseline: Answer;

  it('runs to the billing agent in one process, each tool effect and model turn once, the lookup not recorded', async () => {
    const job = {
      storePath: join(dir, 'base.db'),
      ledgerPath: join(dir, 'base-ledger.db'),
      id: 'support-base',
      resume: false,
    };
    const child = await runChild(job);
    assert.equal(child.code, 0, child.stdout);
    baseline = JSON.parse(child.stdout) as Answer;
    assert.equal(baseline.agent, 'billing');
    assert.match(baseline.answer, /refunded 500 cents on A-1 \| ticket filed: late delivery of A-1/);
    const ledger = openLedger(job.ledgerPath);
    try {
      assert.deepEqual(ledger.effects(job.id), effectsOnce);
      assert.deepEqual(ledger.modelCalls(job.id), [1, 1, 1, 1]);
      assert.equal(ledger.handoffs(job.id), 1);
    } finally {
      ledger.close();
    }
    const { store, workflows } = supportWorkflows(job.storePath, openLedger(job.ledgerPath), () => {});
    try {
      const steps = (await workflows.status(job.id)).steps.map((step) => step.name);
      assert.deepEqual(steps, [
        'model:0',
        'tool:refund:call_refund',
        'tool:file_ticket:call_ticket',
        'model:1',
        'tool:send_note:call_note',
        'model:2',
        'handoff:billing',
        'model:3',
      ]);
    } finally {
      await store.close();
    }
  });

  for (const killAt of killPoints) {
    it(`killed at ${killAt}: every effect once, no finished turn asked again, the same answer`, async () => {
      const name = killAt.replaceAll(':', '-');
      const job = {
        storePath: join(dir, `${name}.db`),
        ledgerPath: join(dir, `${name}-ledger.db`),
        id: `support-${name}`,
      };
      const killed = await runChild({ ...job, resume: false }, killAt);
      assert.equal(killed.signal, 'SIGKILL', `the child got to ${killAt} (stdout: ${killed.stdout})`);
      const resumed = await runChild({ ...job, resume: true });
      assert.equal(resumed.code, 0, resumed.stdout);
      assert.deepEqual(JSON.parse(resumed.stdout), baseline);
      const ledger = openLedger(job.ledgerPath);
      try {
        assert.deepEqual(ledger.effects(job.id), effectsOnce);
        assert.equal(ledger.handoffs(job.id), 1, 'the handoff happened once');
        // A turn is asked again only when the kill came after the model answered and before the turn was recorded.
        const expected = [0, 1, 2, 3].map((turn) => (killAt === `model:${turn}:answered` ? 2 : 1));
        assert.deepEqual(ledger.modelCalls(job.id), expected);
      } finally {
        ledger.close();
      }
    });
  }
});

describe('guarded OpenAI tools outside a durable run', () => {
  it('a retried run with the same run id gets the recorded outputs without running the tools again', async () => {
    const store = new MemoryStore();
    const ran: string[] = [];
    const tools = guardOpenAITools(
      [
        tool({
          name: 'refund',
          description: 'refund',
          parameters: z.object({ order: z.string(), cents: z.number() }),
          execute: ({ order, cents }) => {
            ran.push(`refund:${toolCallContext()?.id}`);
            return `refunded ${cents} cents on ${order}`;
          },
        }),
        tool({
          name: 'lookup_order',
          description: 'lookup',
          parameters: z.object({ order: z.string() }),
          execute: ({ order }) => {
            ran.push('lookup');
            return `order ${order}`;
          },
        }),
      ],
      { store, runId: (runContext) => (runContext.context as { ticket: string }).ticket, readOnly: ['lookup_order'] },
    );
    const ledger = openLedger(join(dir, 'plain-ledger.db'));
    const { triage } = supportAgents(ledger, () => {});
    const agent = triage.clone({ tools, handoffs: [] });
    const calls = [
      { name: 'refund', callId: 'call_refund', arguments: JSON.stringify({ order: 'A-1', cents: 500 }) },
      { name: 'lookup_order', callId: 'call_lookup', arguments: JSON.stringify({ order: 'A-1' }) },
    ];
    const invokeAll = () =>
      Promise.all(
        calls.map((call) => {
          const found = agent.tools.find((t) => t.name === call.name);
          assert.ok(found !== undefined && found.type === 'function');
          return found.invoke({ context: { ticket: 't-1' } } as never, call.arguments, {
            toolCall: { type: 'function_call', ...call },
          });
        }),
      );
    const first = await invokeAll();
    const second = await invokeAll();
    assert.deepEqual(second, first);
    assert.deepEqual(
      ran.sort(),
      ['lookup', 'lookup', 'refund:call_refund'],
      'refund ran once; the read-only lookup each time',
    );
    ledger.close();
  });
});

describe('runOpenAIAgent', () => {
  it('refuses an agent with a tool that is not guarded, naming it', async () => {
    const workflows = new Workflows({ store: new MemoryStore() });
    const ledger = openLedger(join(dir, 'check-ledger.db'));
    const { triage } = supportAgents(ledger, () => {});
    const bare = tool({ name: 'wipe', description: 'wipe', parameters: z.object({}), execute: () => 'wiped' });
    const agent = triage.clone({ tools: [...triage.tools, bare] });
    const def = workflows.define('check', async (ctx) => {
      await runOpenAIAgent(ctx, agent, 'hi', { runConfig: { tracingDisabled: true } });
      return 'ran';
    });
    await assert.rejects(def.run('check-1', {}), (error: unknown) => {
      assert.ok(isIdempotencyError(error));
      assert.match(String((error as Error & { cause?: Error }).cause?.message ?? error), /"wipe"/);
      return true;
    });
    ledger.close();
  });
});
