// A durable OpenAI Agents SDK run with a scripted model (no network): the model asks for a refund,
// then answers. The run's model turns and its refund are steps of a workflow run: starting the same
// run again gives the recorded answer, with no second refund and no second model call.
// (test/agent/openai.test.ts kills such a run with SIGKILL at every turn and resumes it.)
import { Agent, type Model, type ModelRequest, type ModelResponse, tool, Usage } from '@openai/agents';
import { z } from 'zod';
import { guardOpenAITools, runOpenAIAgent, toolCallContext } from '../src/agent/index.js';
import { MemoryStore } from '../src/stores/memory/index.js';
import { Workflows } from '../src/workflow/index.js';

const refunds = new Map<string, number>(); // the payment provider: one refund per idempotency key
let modelCalls = 0;

const model: Model = {
  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    modelCalls++;
    const done =
      typeof request.input !== 'string' && request.input.some((item) => item.type === 'function_call_result');
    const usage = new Usage({ requests: 1, inputTokens: 10, outputTokens: 5, totalTokens: 15 });
    if (!done) {
      const args = JSON.stringify({ order: 'A-1', cents: 500 });
      return {
        usage,
        output: [{ type: 'function_call', callId: 'call_1', name: 'refund', arguments: args, status: 'completed' }],
      };
    }
    const text = `Refunded. Refunds issued: ${refunds.size}`;
    return {
      usage,
      output: [{ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text }] }],
    };
  },
  // biome-ignore lint/correctness/useYield: this model answers whole turns only.
  async *getStreamedResponse() {
    throw new Error('not streamed');
  },
};

const refund = tool({
  name: 'refund',
  description: 'Refund an order',
  parameters: z.object({ order: z.string(), cents: z.number() }),
  execute: ({ order, cents }) => {
    refunds.set(toolCallContext()?.key ?? order, cents);
    return `refunded ${cents} cents on ${order}`;
  },
});
const agent = new Agent({
  name: 'support',
  instructions: 'Help.',
  model: 'scripted',
  tools: guardOpenAITools([refund]),
});

const workflows = new Workflows({ store: new MemoryStore() });
const support = workflows.define('support', async (ctx, question: string) => {
  const result = await runOpenAIAgent(ctx, agent, question, {
    runConfig: { tracingDisabled: true, modelProvider: { getModel: () => model } },
  });
  return String(result.finalOutput);
});

const first = await support.run('ticket-1', 'Refund A-1');
const again = await support.run('ticket-1', 'Refund A-1'); // the same run id: the recorded result
if (first !== again || refunds.size !== 1 || modelCalls !== 2) {
  throw new Error(`expected one refund and two model calls, got ${refunds.size} and ${modelCalls}`);
}
const steps = (await workflows.status('ticket-1')).steps.map((step) => step.name);
console.log(first, steps); // Refunded. Refunds issued: 1 [ 'model:0', 'tool:refund:call_1', 'model:1' ]
