/**
 * Guards the tools of a Vercel AI SDK tool set (`{ [name]: tool({ description, inputSchema, execute }) }`):
 * each `execute(input, { toolCallId })` runs once per run, tool and call id (see ../guard.ts).
 */
import { type GuardOptions, ToolGuard } from '../guard.js';

/** What Idem needs of an AI SDK tool's call options: the model's tool-call id. */
export interface ToolCallOptionsLike {
  toolCallId: string;
}

/** An AI SDK tool as Idem sees it: its `execute`, and whatever else it carries, kept as it is. */
export interface AiToolLike {
  // biome-ignore lint/suspicious/noExplicitAny: the SDK's own tools take their inferred input type here
  execute?: ((input: any, options: any) => unknown) | undefined;
}

/**
 * The same tool set, with each tool's `execute` guarded: a call the run already made (same run,
 * tool and `toolCallId`, or same arguments with `keyBy: 'args'`) gives its recorded result
 * without running the tool. Tools without `execute` and tools named in `readOnly` are left as they are.
 *
 * @example
 * ```ts
 * import { generateText, stepCountIs, tool } from 'ai';
 * import { guardTools } from 'idem/agent';
 *
 * const tools = guardTools(
 *   { refund: tool({ description: 'Refund an order', inputSchema: z.object({ order: z.string() }), execute: refund }) },
 *   { store: new SqliteStore({ path: 'idem.db' }), runId: `ticket-${ticket.id}` },
 * );
 * await generateText({ model, tools, prompt, stopWhen: stepCountIs(5) }); // retried: no second refund
 * ```
 */
export function guardTools<T extends Record<string, AiToolLike>>(tools: T, options: GuardOptions = {}): T {
  const guard = new ToolGuard(options);
  const guarded: Record<string, AiToolLike> = {};
  for (const [name, tool] of Object.entries(tools)) {
    const execute = tool.execute;
    if (execute === undefined || options.readOnly?.includes(name) === true) {
      guarded[name] = tool;
      continue;
    }
    guarded[name] = {
      ...tool,
      execute: (input: unknown, callOptions: ToolCallOptionsLike) =>
        guard.call({ tool: name, callId: callOptions?.toolCallId, args: input }, () => execute(input, callOptions)),
    };
  }
  return guarded as T;
}
