/**
 * Approvals of tool calls: a call of a tool that needs a person's approval waits, durably, for the
 * signal `approve:<tool>:<id>` of its run before it runs. The approver sends the decision with
 * `workflows.signal(runId, approvalSignalName(tool, id), { approved: true })`; the first decision
 * sent counts. A refused call does not run: the model gets a `Refusal` as the tool's result.
 */
import type { RunView } from '../workflow/types.js';

/** What the approver sends as the value of the approval signal. */
export type ApprovalDecision = { approved: true } | { approved: false; reason?: string };

/** The result a refused call gives the model in place of the tool's result. */
export interface Refusal {
  refused: true;
  /** The approver's reason, or `'not approved'` when none was given. */
  reason: string;
}

/** One call that waits for a decision, as `pendingApprovals` finds it. */
export interface PendingApproval {
  /** The signal to send the decision as: `approve:<tool>:<id>`. */
  signal: string;
  tool: string;
  /** The call's id: the model's tool-call id, or the hash of its arguments with `keyBy: 'args'`. */
  id: string;
  /** When the run began to wait. */
  sinceMs?: number;
}

const PREFIX = 'approve:';

/** The name of the signal that approves or refuses call `id` of `tool` (the id of its step `tool:<tool>:<id>`). */
export function approvalSignalName(tool: string, id: string): string {
  return `${PREFIX}${tool}:${id}`;
}

/**
 * The calls of a run that wait for a decision: its signal steps still waiting whose name is an
 * approval's. Tool names are taken to hold no `:` (the SDKs allow letters, digits, `_` and `-`).
 *
 * @example
 * ```ts
 * for (const pending of pendingApprovals(await workflows.status(runId))) {
 *   await workflows.signal(runId, pending.signal, { approved: false, reason: 'over the limit' });
 * }
 * ```
 */
export function pendingApprovals(view: RunView): PendingApproval[] {
  const pending: PendingApproval[] = [];
  for (const step of view.steps) {
    if (step.kind !== 'signal' || step.state !== 'waiting' || !step.name.startsWith(PREFIX)) continue;
    const rest = step.name.slice(PREFIX.length);
    const at = rest.indexOf(':');
    if (at <= 0) continue;
    const approval: PendingApproval = { signal: step.name, tool: rest.slice(0, at), id: rest.slice(at + 1) };
    if (step.startedAtMs !== undefined) approval.sinceMs = step.startedAtMs;
    pending.push(approval);
  }
  return pending;
}

/** The result the model gets for a call, from the approver's decision: `undefined` when approved. */
export function refusalOf(decision: unknown): Refusal | undefined {
  if (decision !== null && typeof decision === 'object' && (decision as { approved?: unknown }).approved === true) {
    return undefined;
  }
  const reason = (decision as { reason?: unknown } | null)?.reason;
  return { refused: true, reason: typeof reason === 'string' && reason !== '' ? reason : 'not approved' };
}
