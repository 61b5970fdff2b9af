/**
 * A durable run of an OpenAI agent: the SDK's runner, inside a workflow body, with every model turn
 * a recorded step (`model:<n>`) and every guarded tool call a step (`tool:<name>:<callId>`). A run
 * killed mid-way and resumed replays its finished turns and calls from the journal and goes on from
 * the first one that did not finish.
 */
import type { Agent, AgentInputItem, NonStreamRunOptions, RunConfig, RunResult } from '@openai/agents';
import { ErrorCode, IdempotencyError } from '../../core/errors.js';
import type { StepOptions, WorkflowContext } from '../../workflow/types.js';
import { inAgentRun } from '../guard.js';
import { isRecordedModel, recordedModel, recordedModelProvider, withRecordedTurns } from './model.js';
import { isGuardedOpenAITool } from './tools.js';

// biome-ignore lint/suspicious/noExplicitAny: the SDK's run() and RunResult take every agent as Agent<any, any> (its types are invariant).
type AnyAgent = Agent<any, any>;
/** The context type an agent runs with (`run(agent, input, { context })`). */
type ContextOf<A> = A extends Agent<infer C, infer _O> ? C : never;

export interface OpenAIAgentRunOptions<TContext> {
  /**
   * The runner's configuration (`tracingDisabled`, `maxTurns`, `modelProvider`, `model`...). The
   * model provider (default: the SDK's OpenAI provider) and a `model` given as an instance are
   * wrapped so that their turns are recorded.
   */
  runConfig?: Partial<RunConfig>;
  /** Options of the run itself (`context`, `maxTurns`, `signal`...). Default: none. */
  run?: Omit<NonStreamRunOptions<TContext>, 'stream'>;
  /**
   * Step options of model turns. Default: one attempt; a model error fails the turn, and the
   * runner decides what to do with it (its own `retry` settings), the same on every replay.
   */
  modelStep?: Pick<StepOptions<unknown>, 'retries' | 'timeoutMs' | 'isFinal'>;
}

/**
 * Runs `agent` on `input` as part of the workflow run `ctx`: model turns and guarded tool calls
 * are steps of the run. The agents it can reach (through handoffs) must record what they do: their
 * function tools guarded (`guardOpenAITools`, read-only ones included), a model given as an
 * instance wrapped with `recordedModel`; otherwise it throws `INVALID_OPTIONS` naming what is not.
 *
 * @example
 * ```ts
 * import { Agent } from '@openai/agents';
 * import { runOpenAIAgent } from 'idem/agent';
 * import { MemoryStore } from 'idem/memory';
 * import { Workflows } from 'idem/workflow';
 *
 * declare const agent: Agent;
 * const workflows = new Workflows({ store: new MemoryStore() });
 * const support = workflows.define('support', async (ctx, question: string) => {
 *   const result = await runOpenAIAgent(ctx, agent, question);
 *   return String(result.finalOutput);
 * });
 * ```
 */
export async function runOpenAIAgent<TAgent extends AnyAgent>(
  ctx: WorkflowContext,
  agent: TAgent,
  input: string | AgentInputItem[],
  options: OpenAIAgentRunOptions<ContextOf<TAgent>> = {},
): Promise<RunResult<ContextOf<TAgent>, TAgent>> {
  checkRecorded(agent);
  const sdk = await import('@openai/agents');
  const { modelProvider, model, ...config } = options.runConfig ?? {};
  const runner = new sdk.Runner({
    ...config,
    modelProvider: recordedModelProvider(modelProvider ?? new sdk.OpenAIProvider()),
    ...(model === undefined ? {} : { model: typeof model === 'string' ? model : recordedModel(model) }),
  });
  return inAgentRun(ctx, () =>
    withRecordedTurns(ctx, options.modelStep ?? {}, () => runner.run(agent, input, { ...options.run, stream: false })),
  );
}

/** What the check reads of an agent. */
interface AgentShape {
  name: string;
  model: unknown;
  tools: readonly { type: string; name: string }[];
  handoffs: readonly (AgentShape | { agent: AgentShape; onInvokeHandoff: unknown })[];
}

/** Every agent reachable from `agent` records its model turns and tool calls, or this throws naming what does not. */
function checkRecorded(agent: AgentShape): void {
  const seen = new Set<AgentShape>();
  const next: AgentShape[] = [agent];
  for (let current = next.pop(); current !== undefined; current = next.pop()) {
    if (seen.has(current)) continue;
    seen.add(current);
    if (typeof current.model === 'object' && !isRecordedModel(current.model)) {
      throw notRecorded(
        `agent "${current.name}" has a model instance that does not record its turns: wrap it with recordedModel(model)`,
      );
    }
    const unguarded = current.tools.filter((tool) => tool.type === 'function' && !isGuardedOpenAITool(tool));
    if (unguarded.length > 0) {
      const names = unguarded.map((tool) => `"${tool.name}"`).join(', ');
      throw notRecorded(
        `agent "${current.name}" has tools that are not guarded (${names}): wrap them with guardOpenAITools, with readOnly for those that change nothing`,
      );
    }
    for (const handoff of current.handoffs) next.push('onInvokeHandoff' in handoff ? handoff.agent : handoff);
  }
}

function notRecorded(what: string): IdempotencyError {
  return new IdempotencyError(
    ErrorCode.INVALID_OPTIONS,
    `[idem] runOpenAIAgent: ${what}; a resumed run would repeat what it does.`,
  );
}
