/**
 * The core of guarding one tool call of an agent, for every SDK: a call is keyed by run, tool and
 * the model's tool-call id (or a hash of its arguments), and runs once. Inside a durable agent run
 * it is a workflow step `tool:<name>:<id>`, so a resumed run replays it; outside one it is a record
 * of the engine (namespace `idem:agent-tool`, scope the run id), so a retried run gets the recorded
 * result without running the tool again. Parallel calls of one turn each have their own key.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { fingerprintOf } from '../core/canonical.js';
import type { EngineOptions } from '../core/engine.js';
import { ErrorCode, IdempotencyError } from '../core/errors.js';
import { idempotencyContext, idempotent } from '../core/idempotent.js';
import type { Store } from '../core/store.js';
import { deriveKey } from '../workflow/keys.js';
import type { StepOptions, WorkflowContext } from '../workflow/types.js';
import { approvalSignalName, refusalOf } from './approvals.js';

/** The namespace of guarded tool calls outside workflows: `storeKeyOf(TOOL_NAMESPACE, runId, 'tool:id')`. */
export const TOOL_NAMESPACE = 'idem:agent-tool';

/**
 * What identifies a call across retries: `'callId'`, the model's tool-call id (stable when the
 * model turn that asked for it is recorded, or the SDK replays its history); `'args'`, the
 * canonical hash of the arguments, for SDKs whose call ids change across retries (then two calls
 * of one tool with equal arguments in one run are one call).
 */
export type KeyBy = 'callId' | 'args';

/** How tool calls are guarded: where they are recorded and how they are told apart. */
export interface GuardOptions extends Partial<Omit<EngineOptions, 'store'>> {
  /**
   * Where calls outside a durable run are recorded. Not needed inside one (`ctx`, or a run of
   * `agentWorkflow` / `durableGenerateText`), where calls are steps of the run's journal.
   */
  store?: Store;
  /** The agent run the calls belong to, outside a durable run: a retry of the run passes the same id. */
  runId?: string;
  /** The workflow run to record calls in as steps. Default: the durable agent run this code runs in, if any. */
  ctx?: WorkflowContext;
  /** See `KeyBy`. Default `'callId'`. */
  keyBy?: KeyBy;
  /** Names of tools that change nothing: they run every time and are not recorded. Default: none. */
  readOnly?: readonly string[];
  /**
   * Step options of tool calls inside a durable run. Default: one attempt (a tool's error goes
   * back to the model, as without Idem); pass `retries` to retry inside the step.
   */
  step?: Pick<StepOptions<unknown>, 'retries' | 'timeoutMs' | 'isFinal'>;
  /**
   * Tools whose calls need a person's approval (names, or a test of the call). Inside a durable
   * run such a call first waits, durably, for the signal `approvalSignalName(tool, id)`; an
   * approval (`{ approved: true }`) runs the tool as its step, a refusal (`{ approved: false,
   * reason }`) records `{ refused: true, reason }` as the call's result, for the model, and the
   * tool does not run. Outside a durable run such a call fails with `INVALID_OPTIONS`. Tools in
   * `readOnly` are not guarded and so are never asked about. Default: none.
   */
  approval?: readonly string[] | ((call: ToolCall) => boolean);
}

/** One tool call as the model asked for it. */
export interface ToolCall {
  /** The tool's name. */
  tool: string;
  /** The model's tool-call id; required with `keyBy: 'callId'`. */
  callId?: string | undefined;
  /** The arguments: their canonical form is the call's fingerprint (and its key with `keyBy: 'args'`). */
  args: unknown;
  /** This call changes nothing: run it without a record. Default false. */
  readOnly?: boolean;
}

/** What a guarded tool can learn about its own call, through `toolCallContext()`. */
export interface ToolCallContext {
  /**
   * A key for this call, stable across retries and resumes of the run: pass it downstream as an
   * `Idempotency-Key`, or write your effect once under it (`INSERT ... ON CONFLICT (key) DO NOTHING`).
   */
  readonly key: string;
  readonly tool: string;
  /** The call's id: the model's tool-call id, or the hash of the arguments with `keyBy: 'args'`. */
  readonly id: string;
  /** 1 on the first attempt; more when a crashed attempt is taken over. */
  readonly attempt: number;
  /** True inside a durable run (the call is a workflow step). */
  readonly durable: boolean;
}

const runs = new AsyncLocalStorage<WorkflowContext>();
const calls = new AsyncLocalStorage<ToolCallContext>();

/** Runs `fn` as the body of a durable agent run: guarded tools inside it record their calls as steps of `ctx`. */
export function inAgentRun<T>(ctx: WorkflowContext, fn: () => T): T {
  return runs.run(ctx, fn);
}

/** The durable agent run this code runs in, if any. */
export function currentAgentRun(): WorkflowContext | undefined {
  return runs.getStore();
}

/** Inside a guarded tool, its call; `undefined` elsewhere (and in read-only tools). */
export function toolCallContext(): ToolCallContext | undefined {
  return calls.getStore();
}

type Execute = () => Promise<unknown> | unknown;
type Recorded = (call: Keyed, execute: Execute) => Promise<unknown>;

interface Keyed {
  runId: string;
  tool: string;
  id: string;
  args: unknown;
}

/**
 * Guards tool calls: `call(toolCall, execute)` runs `execute` once per key and gives every later
 * call of the same key the recorded result.
 *
 * @example
 * ```ts
 * const guard = new ToolGuard({ store: new SqliteStore({ path: 'idem.db' }), runId: 'ticket-42' });
 * const refund = await guard.call({ tool: 'refund', callId: 'call_1', args: { cents: 500 } }, () => payments.refund(500));
 * ```
 */
export class ToolGuard {
  readonly #options: GuardOptions;
  #recorded: Recorded | undefined;

  constructor(options: GuardOptions = {}) {
    this.#options = options;
  }

  /** Runs `execute` for `call` once per key (see `GuardOptions`); a repeated key gets the recorded result. */
  async call<T>(call: ToolCall, execute: () => Promise<T> | T): Promise<T> {
    if (call.readOnly === true || this.#options.readOnly?.includes(call.tool) === true) return await execute();
    const id = this.#idOf(call);
    const ctx = this.#options.ctx ?? currentAgentRun();
    const approval = this.#needsApproval(call);
    if (ctx !== undefined) {
      // The wait comes before the step: its op is taken when the call is made, as the step's is without approval.
      const refusal = approval ? refusalOf(await ctx.waitForSignal(approvalSignalName(call.tool, id))) : undefined;
      return (await ctx.step(
        `tool:${call.tool}:${id}`,
        (step) =>
          refusal ??
          calls.run(
            { key: step.key, tool: call.tool, id, attempt: step.attempt, durable: true },
            async () => await collect(await execute()),
          ),
        { retries: { maxAttempts: 1 }, ...this.#options.step },
      )) as T;
    }
    if (approval) {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] tool "${call.tool}" needs approval, and only a durable agent run can wait for one; run the agent with agentWorkflow (or pass ctx), or take "${call.tool}" out of approval.`,
      );
    }
    const runId = this.#options.runId;
    if (runId === undefined || runId === '') {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] tool "${call.tool}" was called outside a durable agent run and without a runId; pass { store, runId } to the guard, or run the agent with agentWorkflow.`,
      );
    }
    return (await this.#engineCall()({ runId, tool: call.tool, id, args: call.args }, execute)) as T;
  }

  #needsApproval(call: ToolCall): boolean {
    const approval = this.#options.approval;
    if (approval === undefined) return false;
    return typeof approval === 'function' ? approval(call) : approval.includes(call.tool);
  }

  #idOf(call: ToolCall): string {
    if ((this.#options.keyBy ?? 'callId') === 'args') return fingerprintOf(call.args ?? null);
    if (call.callId === undefined || call.callId === '') {
      throw new IdempotencyError(
        ErrorCode.KEY_MISSING,
        `[idem] tool "${call.tool}" was called without a tool-call id; use keyBy: 'args' for an SDK that gives none.`,
      );
    }
    return call.callId;
  }

  #engineCall(): Recorded {
    if (this.#recorded !== undefined) return this.#recorded;
    const {
      store,
      retentionMs,
      leaseMs,
      heartbeatMs,
      storeTimeoutMs,
      maxResultBytes,
      encryptionKey,
      now,
      telemetry,
      onEvent,
    } = this.#options;
    if (store === undefined) {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        '[idem] tool calls outside a durable agent run need a store to be recorded in: pass { store, runId } to the guard.',
      );
    }
    this.#recorded = idempotent(
      async function guardedTool(call: Keyed, execute: Execute): Promise<unknown> {
        const claim = idempotencyContext();
        const key = deriveKey(call.runId, `${TOOL_NAMESPACE}:${call.tool}:${call.id}`);
        const context = { key, tool: call.tool, id: call.id, attempt: claim?.attempts ?? 1, durable: false };
        return await calls.run(context, async () => await collect(await execute()));
      },
      {
        ...{
          retentionMs,
          leaseMs,
          heartbeatMs,
          storeTimeoutMs,
          maxResultBytes,
          encryptionKey,
          now,
          telemetry,
          onEvent,
        },
        store,
        name: TOOL_NAMESPACE,
        scope: (call) => call.runId,
        key: (call) => `${call.tool}:${call.id}`,
        fingerprint: (call) => ({ tool: call.tool, args: call.args ?? null }),
        // A retried run that reaches a call still running elsewhere waits for its result.
        onInProgress: 'wait',
      },
    );
    return this.#recorded;
  }
}

/**
 * Guards one tool call (see `ToolGuard`): inside a durable run a step of it, outside a record in
 * `options.store` under `options.runId`.
 */
export function guardedCall<T>(call: ToolCall & GuardOptions, execute: () => Promise<T> | T): Promise<T> {
  return new ToolGuard(call).call(call, execute);
}

/**
 * A tool's result as it can be recorded: an async iterable (a tool streaming preliminary results)
 * is read to its end and its last value kept, which is what the SDKs take as the tool's output.
 */
export async function collect(value: unknown): Promise<unknown> {
  if (value === null || typeof value !== 'object' || !(Symbol.asyncIterator in value)) return value;
  let last: unknown;
  for await (const item of value as AsyncIterable<unknown>) last = item;
  return last;
}

/** Model turns of each run body, counted together for every model and SDK in it: steps `model:0`, `model:1`... */
const modelTurns = new WeakMap<WorkflowContext, { next: number }>();

/** The number of the next model turn of the run body `ctx`. */
export function nextModelTurn(ctx: WorkflowContext): number {
  let counter = modelTurns.get(ctx);
  if (counter === undefined) {
    counter = { next: 0 };
    modelTurns.set(ctx, counter);
  }
  return counter.next++;
}
