/**
 * Handing a durable agent run's work to another workflow run: the other run is started once, as a
 * child of this one (its status names this run as `parentId`), and its result comes back here.
 */
import { ErrorCode, IdempotencyError } from '../core/errors.js';
import type { ChildDefinition, WorkflowContext } from '../workflow/types.js';
import { currentAgentRun } from './guard.js';

export interface HandoffRunOptions {
  /** The other run's workflow id. Default `<this run's id>:handoff:<definition name>`: one handoff per workflow. */
  id?: string;
  /** The run that hands off. Default: the durable agent run this code runs in. */
  ctx?: WorkflowContext;
}

/**
 * Starts a run of `definition` (another agent workflow) with `input`, once across resumes of this
 * run, and gives its result. A resumed run attaches to the run it started: the other run is not
 * started twice, and what it already did is not done again.
 *
 * @example
 * ```ts
 * const triage = agentWorkflow(workflows, 'triage', async (agent, input: { prompt: string }) => {
 *   const answer = await handoffRun(refundDesk, { prompt: input.prompt }); // run `<id>:handoff:refund-desk`
 *   return answer.text;
 * });
 * ```
 */
export async function handoffRun<I, O>(
  definition: ChildDefinition<I, O>,
  input: I,
  options: HandoffRunOptions = {},
): Promise<O> {
  const ctx = options.ctx ?? currentAgentRun();
  if (ctx === undefined) {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      `[idem] handoffRun(${definition.name}) was called outside a durable agent run; call it in the body of agentWorkflow (or pass { ctx }).`,
    );
  }
  return await ctx.child(definition, options.id ?? `${ctx.workflowId}:handoff:${definition.name}`, input);
}
