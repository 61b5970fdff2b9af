/**
 * Handoffs in durable runs: the receiving agent's turns are recorded in the same run (its model
 * turns are steps like the first agent's), and a guarded handoff is itself a step
 * `handoff:<agent>`, so its `onHandoff` runs once and the journal shows who handed off to whom.
 */
import type { AgentOutputType, Handoff } from '@openai/agents';
import { currentAgentRun } from '../guard.js';

/** What the journal records of a handoff. */
export interface HandoffRecord {
  /** The tool the model called to hand off (`transfer_to_billing`). */
  tool: string;
  /** The receiving agent's name. */
  to: string;
}

const GUARDED = Symbol.for('idem.agent.openai.guarded-handoff');

/** True when `handoff` was made by `guardOpenAIHandoff`. */
export function isGuardedOpenAIHandoff(handoff: unknown): boolean {
  return typeof handoff === 'object' && handoff !== null && (handoff as { [GUARDED]?: true })[GUARDED] === true;
}

/**
 * Makes a handoff a step of the durable run it happens in: its `onHandoff` runs once, and a
 * resumed run takes the recorded handoff without calling it again. Outside a durable run it is the
 * handoff as it was.
 *
 * @example
 * ```ts
 * import { Agent, handoff } from '@openai/agents';
 * import { guardOpenAIHandoff } from 'idem/agent';
 *
 * declare const billing: Agent;
 * declare function notifyBilling(): Promise<void>;
 * const triage = new Agent({ name: 'triage', handoffs: [guardOpenAIHandoff(handoff(billing, { onHandoff: notifyBilling }))] });
 * ```
 */
export function guardOpenAIHandoff<TContext, TOutput extends AgentOutputType>(
  handoff: Handoff<TContext, TOutput>,
): Handoff<TContext, TOutput> {
  if (isGuardedOpenAIHandoff(handoff)) return handoff;
  const original = handoff.onInvokeHandoff.bind(handoff);
  const guarded = handoff.clone({
    onInvokeHandoff: async (context, args) => {
      const ctx = currentAgentRun();
      if (ctx === undefined) return original(context, args);
      await ctx.step(
        `handoff:${handoff.agentName}`,
        async (): Promise<HandoffRecord> => {
          await original(context, args);
          return { tool: handoff.toolName, to: handoff.agentName };
        },
        { retries: { maxAttempts: 1 } },
      );
      return handoff.agent;
    },
  });
  Object.defineProperty(guarded, GUARDED, { value: true });
  return guarded;
}
