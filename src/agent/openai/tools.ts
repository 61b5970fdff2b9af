/**
 * Guarding the tools of the OpenAI Agents SDK (`@openai/agents`): a `FunctionTool` made by
 * `tool({ name, parameters, execute })` gets an `invoke` that runs the tool's own once per key
 * (run id, tool name, the model's `callId` or the arguments' hash), through the shared `ToolGuard`.
 * Inside a durable run (`runOpenAIAgent`) a call is the step `tool:<name>:<id>` of the run.
 */
import type { FunctionTool, RunContext, Tool } from '@openai/agents';
import { ErrorCode, IdempotencyError } from '../../core/errors.js';
import { currentAgentRun, type GuardOptions, ToolGuard } from '../guard.js';

/** How the tools of an OpenAI agent are guarded. */
export interface OpenAIToolGuardOptions extends Omit<GuardOptions, 'runId' | 'ctx'> {
  /**
   * The agent run the calls belong to, outside a durable run: a string, or read from the SDK's run
   * context (`runContext.context` is what you passed to `run(agent, input, { context })`). A retry
   * of the run must give the same id. Not needed inside `runOpenAIAgent`.
   */
  runId?: string | ((runContext: RunContext<unknown>) => string);
}

/** The options of one tool: `readOnly: true` runs it every time, without a record. */
export interface OpenAISingleToolGuardOptions extends Omit<OpenAIToolGuardOptions, 'readOnly'> {
  /** The tool changes nothing: it runs every time and is not recorded. Default false. */
  readOnly?: boolean;
}

/** What the SDK passes a tool call besides its input: `toolCall.callId` is the model's id for the call. */
type ToolCallDetails = Parameters<FunctionTool['invoke']>[2];

/** The part of a function tool (`FunctionTool` of any context, parameters and result) the guard uses. */
export interface InvokableTool {
  type: 'function';
  name: string;
  invoke: (runContext: never, input: string, details?: ToolCallDetails) => Promise<unknown>;
}

/** Marks a tool whose calls go through the guard (read-only ones included), so a durable run can check it. */
const GUARDED = Symbol.for('idem.agent.openai.guarded');

/** True when `tool` was made by `guardOpenAITool` / `guardOpenAITools`. */
export function isGuardedOpenAITool(tool: unknown): boolean {
  return typeof tool === 'object' && tool !== null && (tool as { [GUARDED]?: true })[GUARDED] === true;
}

/**
 * Guards one function tool: its calls run once per run, tool and call id, and a retried or resumed
 * run gets the recorded output. An output the SDK made of a thrown error (its `errorFunction`,
 * "An error occurred while running the tool...") is the call's output and is recorded too: the
 * model saw it. With `errorFunction: null` on the tool, an error is thrown instead and not recorded.
 *
 * @example
 * ```ts
 * import { tool } from '@openai/agents';
 * import { z } from 'zod';
 * import { guardOpenAITool, toolCallContext } from 'idem/agent';
 * import { SqliteStore } from 'idem/sqlite';
 *
 * declare const payments: { refund(order: string, key: string): Promise<string> };
 * const refund = guardOpenAITool(
 *   tool({
 *     name: 'refund',
 *     description: 'Refund an order',
 *     parameters: z.object({ order: z.string() }),
 *     execute: ({ order }) => payments.refund(order, toolCallContext()?.key ?? order),
 *   }),
 *   { store: new SqliteStore({ path: 'idem.db' }), runId: (rc) => (rc.context as { ticket: string }).ticket },
 * );
 * ```
 */
export function guardOpenAITool<T extends InvokableTool>(tool: T, options: OpenAISingleToolGuardOptions = {}): T {
  if (tool?.type !== 'function' || typeof tool.invoke !== 'function') {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      '[idem] guardOpenAITool takes a function tool made by tool({ name, parameters, execute }) of @openai/agents.',
    );
  }
  if (isGuardedOpenAITool(tool)) return tool;
  const { runId, readOnly = false, ...rest } = options;
  const fixed = new ToolGuard(typeof runId === 'string' ? { ...rest, runId } : rest);
  // A run id read from the run context is read only outside durable runs, where it is needed.
  const guardOf = (runContext: RunContext<unknown>): ToolGuard =>
    typeof runId !== 'function' || currentAgentRun() !== undefined
      ? fixed
      : new ToolGuard({ ...rest, runId: runId(runContext) });
  const invoke = tool.invoke;
  return {
    ...tool,
    [GUARDED]: true,
    invoke: function guardedInvoke(runContext: RunContext<unknown>, input: string, details?: ToolCallDetails) {
      const call = { tool: tool.name, callId: details?.toolCall?.callId, args: argsOf(input), readOnly };
      return guardOf(runContext).call(call, () => invoke.call(tool, runContext as never, input, details));
    },
  };
}

/**
 * Guards every function tool of a list (hosted, computer and other tools are kept as they are);
 * `readOnly` names those that change nothing.
 *
 * @example
 * ```ts
 * import { Agent } from '@openai/agents';
 * import { guardOpenAITools } from 'idem/agent';
 *
 * declare const refund: import('@openai/agents').FunctionTool;
 * declare const lookupOrder: import('@openai/agents').FunctionTool;
 * const agent = new Agent({ name: 'support', tools: guardOpenAITools([refund, lookupOrder], { readOnly: ['lookup_order'] }) });
 * ```
 */
export function guardOpenAITools<TContext, T extends Tool<TContext>>(
  tools: readonly T[],
  options: OpenAIToolGuardOptions = {},
): T[] {
  const { readOnly = [], ...rest } = options;
  return tools.map((tool) =>
    tool.type === 'function'
      ? (guardOpenAITool(tool as T & InvokableTool, { ...rest, readOnly: readOnly.includes(tool.name) }) as T)
      : tool,
  );
}

/** The arguments as the model sent them (a JSON string), parsed for the fingerprint; kept as text when not JSON. */
function argsOf(input: string): unknown {
  try {
    return JSON.parse(input);
  } catch {
    return input;
  }
}
