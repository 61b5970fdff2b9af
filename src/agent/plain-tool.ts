/** Guards a plain tool `{ name, execute(args) }`, the shape of hand-written agents (see ./guard.ts). */
import { type GuardOptions, ToolGuard } from './guard.js';

/** A tool as a hand-written agent loop has it. */
export interface PlainTool<A, R> {
  name: string;
  execute(args: A): Promise<R> | R;
}

/** A guarded plain tool: pass the model's tool-call id when there is one. */
export interface GuardedPlainTool<A, R> {
  name: string;
  execute(args: A, call?: { callId?: string }): Promise<R>;
}

/**
 * Guards a plain tool. Without a call id to pass, use `keyBy: 'args'`: equal arguments in one run are one call.
 *
 * @example
 * ```ts
 * const fileTicket = guardTool({ name: 'file_ticket', execute: (args: { title: string }) => tracker.create(args) },
 *   { store, runId: 'run-7', keyBy: 'args' });
 * await fileTicket.execute({ title: 'Printer on fire' }); // a retry of run-7 files nothing more
 * ```
 */
export function guardTool<A, R>(tool: PlainTool<A, R>, options: GuardOptions = {}): GuardedPlainTool<A, R> {
  const guard = new ToolGuard(options);
  return {
    name: tool.name,
    execute: (args, call) => guard.call({ tool: tool.name, callId: call?.callId, args }, () => tool.execute(args)),
  };
}
