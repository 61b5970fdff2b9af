/**
 * Durable AI SDK agent runs: a workflow whose body calls `generateText` / `streamText` with the
 * model's turns and the tools' calls as steps, so a run killed mid-way resumes where it was.
 */
import type { DefineOptions, WorkflowContext } from '../../workflow/types.js';
import type { WorkflowDefinition, Workflows } from '../../workflow/workflows.js';
import { type GuardOptions, inAgentRun } from '../guard.js';
import { type DurableModelOptions, durableModel, type LanguageModelLike } from './durable-model.js';
import { type AiToolLike, guardTools } from './guard-tools.js';

/** How the tools of a durable run are guarded (their calls are always steps of the run). */
export type DurableToolOptions = Pick<GuardOptions, 'keyBy' | 'readOnly' | 'step' | 'approval'>;

/** What the body of an `agentWorkflow` gets to make its model and tools durable. */
export interface AgentRun {
  /** The workflow run: for steps, sleeps and transactions of your own between agent calls. */
  readonly ctx: WorkflowContext;
  /** `model` with each of its calls a step `model:<n>` of the run (see `durableModel`). */
  model<M extends LanguageModelLike>(model: M, options?: DurableModelOptions): M;
  /** `tools` with each call a step `tool:<name>:<id>` of the run (see `guardTools`). */
  tools<T extends Record<string, AiToolLike>>(tools: T, options?: DurableToolOptions): T;
}

/**
 * Defines a durable agent: a workflow whose body runs the agent with `agent.model(...)` and
 * `agent.tools(...)`. Tools guarded with `guardTools` inside the body without a store are steps of
 * the run too. The body between steps re-runs on resume: keep it deterministic.
 *
 * @example
 * ```ts
 * import { generateText, stepCountIs } from 'ai';
 *
 * const support = agentWorkflow(workflows, 'support', async (agent, input: { prompt: string }) => {
 *   const result = await generateText({
 *     model: agent.model(openai('gpt-5')),
 *     tools: agent.tools({ refund, fileTicket }),
 *     prompt: input.prompt,
 *     stopWhen: stepCountIs(8),
 *     maxRetries: 0, // the model step retries, durably
 *   });
 *   return result.text;
 * });
 * await support.run(`ticket-${ticket.id}`, { prompt: ticket.body });
 * ```
 */
export function agentWorkflow<I, O>(
  workflows: Workflows,
  name: string,
  body: (agent: AgentRun, input: I) => Promise<O>,
  options?: DefineOptions,
): WorkflowDefinition<I, O> {
  return workflows.define<I, O>(
    name,
    (ctx, input) => {
      const agent: AgentRun = {
        ctx,
        model: (model, modelOptions) => durableModel(model, ctx, modelOptions),
        tools: (tools, toolOptions) => guardTools(tools, { ...toolOptions, ctx }),
      };
      return inAgentRun(ctx, () => body(agent, input));
    },
    options,
  );
}

/** What `generateText` gives back, as far as a durable run records it. */
export interface TextResultLike {
  text: string;
  finishReason: string;
  steps: readonly unknown[];
  response: { messages: readonly unknown[] };
}

/** A run's input: a prompt, or the conversation so far (plain data: it is recorded with the run). */
export interface AgentInput {
  prompt?: string;
  messages?: unknown[];
  system?: string;
}

/** A durable run's answer. */
export interface AgentAnswer {
  text: string;
  finishReason: string;
  /** Model turns the run took. */
  steps: number;
  /** The messages the run added (assistant turns and tool results), to continue the conversation. */
  messages: unknown[];
}

// biome-ignore lint/suspicious/noExplicitAny: `generateText` is generic over its tools and output; any of its instantiations fits
type GenerateTextLike = (options: any) => PromiseLike<TextResultLike>;

export interface DurableGenerateTextOptions<G extends GenerateTextLike> extends DurableToolOptions {
  /** `generateText` from `ai` (or `streamText`'s non-streaming twin you wrote): Idem does not import `ai`. */
  generateText: G;
  model: LanguageModelLike;
  tools?: Record<string, AiToolLike>;
  /**
   * The other settings of every call (`stopWhen`, `system`, `temperature`...): plain code, the same
   * in every process. `maxRetries` defaults to 0: the model step retries instead (`modelStep`).
   */
  settings?: Omit<Parameters<G>[0], 'model' | 'tools' | 'prompt' | 'messages'>;
  /** Options of the model's steps. */
  modelStep?: DurableModelOptions['step'];
  /** The workflow's version (see `Workflows.define`). */
  version?: number;
}

/**
 * A durable `generateText` tool loop: a workflow named `name` whose runs send `input` to the
 * model, with every model turn and tool call recorded. `start(runId, input)` it; a worker resumes
 * a run whose process died, without repeating a finished turn or tool call.
 *
 * @example
 * ```ts
 * import { generateText, stepCountIs } from 'ai';
 *
 * const agent = durableGenerateText(workflows, 'support', {
 *   generateText, model: openai('gpt-5'), tools: { refund, fileTicket }, settings: { stopWhen: stepCountIs(8) },
 * });
 * const { text } = await agent.run(`ticket-${ticket.id}`, { prompt: ticket.body });
 * ```
 */
export function durableGenerateText<G extends GenerateTextLike>(
  workflows: Workflows,
  name: string,
  options: DurableGenerateTextOptions<G>,
): WorkflowDefinition<AgentInput, AgentAnswer> {
  const { generateText, model, tools, settings, modelStep, version, ...guard } = options;
  const define = version === undefined ? undefined : { version };
  return agentWorkflow<AgentInput, AgentAnswer>(
    workflows,
    name,
    async (agent, input) => {
      const result = await generateText({
        maxRetries: 0,
        ...settings,
        ...input,
        model: agent.model(model, { step: modelStep }),
        ...(tools === undefined ? {} : { tools: agent.tools(tools, guard) }),
      });
      return {
        text: result.text,
        finishReason: result.finishReason,
        steps: result.steps.length,
        messages: [...result.response.messages],
      };
    },
    define,
  );
}
