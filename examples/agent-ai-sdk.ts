// An AI SDK agent whose refund tool must not run twice. A scripted mock model (from `ai/test`, no
// network) asks for a refund, then answers. First, the tools are guarded with a store and a run
// id: the caller retries the whole generateText, and the refund runs once. Then the same agent as
// a durable run: every model turn and tool call is a recorded step, so starting the run again
// (as a worker does after a crash) neither asks the model again nor refunds again.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateText, stepCountIs, tool } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { z } from 'zod';
import { durableGenerateText, guardTools, toolCallContext } from '../src/agent/index.js';
import { SqliteStore } from '../src/stores/sqlite/index.js';
import { Workflows } from '../src/workflow/index.js';

const usage = {
  inputTokens: { total: 8, noCache: 8, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 4, text: 4, reasoning: undefined },
};
let modelCalls = 0;
// Turn 1 asks for the refund; turn 2 (the refund's result is in the prompt) answers.
const model = new MockLanguageModelV3({
  doGenerate: async (options) => {
    modelCalls++;
    const refunded = options.prompt.some((message) => message.role === 'tool');
    return {
      content: refunded
        ? [{ type: 'text', text: 'Your order A-7 was refunded.' }]
        : [{ type: 'tool-call', toolCallId: 'call_1', toolName: 'refund', input: '{"order":"A-7","cents":500}' }],
      finishReason: { unified: refunded ? 'stop' : 'tool-calls', raw: undefined },
      usage,
      warnings: [],
    };
  },
});

const refunds: string[] = [];
const tools = {
  refund: tool({
    description: 'Refund an order',
    inputSchema: z.object({ order: z.string(), cents: z.number() }),
    // Pass the call's key on to the payment provider as its Idempotency-Key.
    execute: async ({ order, cents }) => {
      refunds.push(`${order} ${cents} (key ${toolCallContext()?.key.slice(0, 12)}...)`);
      return { refunded: cents };
    },
  }),
};

const dir = mkdtempSync(join(tmpdir(), 'idem-agent-example-'));
const store = new SqliteStore({ path: join(dir, 'idem.db') });
try {
  // 1. Guarded tools: a retried generateText with the same run id.
  const guarded = guardTools(tools, { store, runId: 'ticket-42' });
  for (let attempt = 1; attempt <= 2; attempt++) {
    const { text } = await generateText({ model, tools: guarded, prompt: 'Refund A-7', stopWhen: stepCountIs(4) });
    console.log(`attempt ${attempt}: ${text}`);
  }
  console.log(`refunds: ${refunds.length} (${refunds.join(', ')}); model calls: ${modelCalls}`);
  if (refunds.length !== 1) throw new Error('the retried run refunded again');

  // 2. A durable run: starting it again gives the recorded answer.
  refunds.length = 0;
  modelCalls = 0;
  const workflows = new Workflows({ store });
  const support = durableGenerateText(workflows, 'support', {
    generateText,
    model,
    tools,
    settings: { stopWhen: stepCountIs(4) },
  });
  const first = await support.run('ticket-43', { prompt: 'Refund A-7' });
  const again = await support.run('ticket-43', { prompt: 'Refund A-7' });
  console.log(`durable: "${first.text}" then "${again.text}"`);
  console.log(`refunds: ${refunds.length}; model calls: ${modelCalls}`);
  const steps = (await workflows.status('ticket-43')).steps.map((step) => step.name);
  console.log(`journal: ${steps.join(', ')}`);
  if (refunds.length !== 1 || modelCalls !== 2) throw new Error('the durable run repeated work');
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
