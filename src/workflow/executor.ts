/**
 * Runs one workflow run while holding its lease, to one of its ends: completed (or failed, or
 * cancelled, after its compensations), suspended until a sleep ends, parked for an operator, or
 * stopped (the lease was lost, or the store failed) so that recovery takes it up again.
 */
import type { Lease } from '../core/engine.js';
import { ErrorCode, IdempotencyError, isIdempotencyError } from '../core/errors.js';
import { OutcomeKind } from '../core/outcome.js';
import { describeError, type StoredError } from '../core/stored-error.js';
import { defaultSerializer } from '../core/value-codec.js';
import { makeDueNow } from './due-now.js';
import { RunContext, type RunParts } from './run-context.js';
import { Suspend } from './run-control.js';
import type { WorkflowFunction } from './types.js';

export type RunEnd = 'completed' | 'failed' | 'cancelled' | 'suspended' | 'parked' | 'stopped';

/** What a completed run's record holds, encoded with the value serializer. */
export type StoredOutcome = { ok: true; value: unknown } | { ok: false; error: StoredError; cancelled: boolean };

export interface ExecuteInput extends RunParts {
  fn: WorkflowFunction<unknown, unknown>;
  /** Takeovers after a crash before the run is parked as dead. */
  maxAttempts: number;
  /** Reads whether the run was asked to stop: the reason, or `undefined`. */
  cancelled: () => Promise<string | undefined>;
}

export async function execute(input: ExecuteInput): Promise<RunEnd> {
  const ctx = new RunContext(input);
  const { lease } = input;
  const watch = watchCancel(ctx, input);
  try {
    const dead = await beforeResume(ctx, input);
    if (dead !== undefined) return await park(ctx, input, 'dead', dead);
    let value: unknown;
    let failure: { error: unknown } | undefined;
    try {
      value = await input.fn(ctx, input.start.input);
      if (ctx.halted === undefined) ctx.checkNothingSkipped();
    } catch (error) {
      failure = { error };
    }
    await ctx.settle();
    const halted = ctx.halted;
    if (halted !== undefined && !isIdempotencyError(halted, ErrorCode.WORKFLOW_CANCELLED))
      return await stopFor(halted, ctx, input);
    if (halted === undefined && failure === undefined) return await finish(lease, { ok: true, value }, 'completed');
    return await giveUp(ctx, input, halted ?? failure?.error);
  } catch (error) {
    return await stopFor(error, ctx, input);
  } finally {
    clearInterval(watch);
  }
}

/**
 * On a takeover: a cancellation asked meanwhile is noted (the run goes on to run its undos); else a
 * run that was taken over too often is dead: the error to park it with.
 */
async function beforeResume(ctx: RunContext, input: ExecuteInput): Promise<IdempotencyError | undefined> {
  const { lease, replay } = input;
  if (lease.attempts <= 1) return undefined;
  const reason = await input.cancelled();
  if (reason !== undefined) {
    ctx.cancel(reason);
    return undefined;
  }
  const before = Math.max(input.start.attemptsBefore, replay.resumedAtAttempts);
  const crashes = lease.attempts - 1 - before - replay.suspendedSleeps;
  return crashes >= input.maxAttempts ? deadError(crashes, replay.lastError) : undefined;
}

/** Records that the run gives up, runs the undos, and stores the failure (or cancellation). */
async function giveUp(ctx: RunContext, input: ExecuteInput, error: unknown): Promise<RunEnd> {
  const cancelled = isIdempotencyError(error, ErrorCode.WORKFLOW_CANCELLED);
  const stored = describeError(error);
  if (!input.replay.gaveUp) await ctx.append({ t: 'failed', error: stored, cancelled });
  try {
    await ctx.compensate();
  } catch (undoError) {
    if (ctx.halted !== undefined) return stopFor(ctx.halted, ctx, input);
    return park(ctx, input, 'dead', undoError);
  }
  return finish(input.lease, { ok: false, error: stored, cancelled }, cancelled ? 'cancelled' : 'failed');
}

/** Stores the run's outcome; a lease lost meanwhile leaves it to the new holder. */
async function finish(lease: Lease, outcome: StoredOutcome, end: RunEnd): Promise<RunEnd> {
  const kind = outcome.ok ? OutcomeKind.value : OutcomeKind.error;
  let payload: Uint8Array;
  try {
    payload = defaultSerializer.encode(outcome);
  } catch (cause) {
    payload = defaultSerializer.encode({ ok: false, error: describeError(unrecordable(cause)), cancelled: false });
  }
  await lease.complete({ kind, payload });
  return end;
}

/** Why the body stopped without an outcome: suspended, parked, or stopped for recovery. */
async function stopFor(reason: unknown, ctx: RunContext, input: ExecuteInput): Promise<RunEnd> {
  const { lease, engine, store } = input;
  if (reason instanceof Suspend) {
    lease.stopHeartbeat();
    const nowMs = engine.now();
    const kept = await engine.call('extend', () =>
      store.extend({
        key: lease.key,
        token: lease.token,
        nowMs,
        leaseExpiresAtMs: reason.wakeAtMs,
        expiresAtMs: reason.wakeAtMs + engine.retentionMs,
      }),
    );
    if (!kept) return 'stopped';
    // What the run waits for came between its look and its letting go: due at once, not at the next look.
    if (reason.ready !== undefined && (await reason.ready())) {
      await makeDueNow(engine, store, lease.key, lease.token);
    }
    return 'suspended';
  }
  if (isIdempotencyError(reason, ErrorCode.WORKFLOW_NONDETERMINISM)) return park(ctx, input, 'blocked', reason);
  // Lease lost, store down, a crash of our own: stop holding; the lease runs out and recovery resumes the run.
  lease.stopHeartbeat();
  return 'stopped';
}

/**
 * Parks the run for an operator: records why, and holds its lease until its retention ends, so
 * no worker takes it up again until `resume` cuts the lease short.
 */
async function park(ctx: RunContext, input: ExecuteInput, kind: 'dead' | 'blocked', error: unknown): Promise<RunEnd> {
  const { lease, engine, store } = input;
  lease.stopHeartbeat();
  try {
    await ctx.append({ t: kind, error: describeError(error) });
  } catch {
    return 'stopped';
  }
  const nowMs = engine.now();
  await engine.call('extend', () =>
    store.extend({
      key: lease.key,
      token: lease.token,
      nowMs,
      leaseExpiresAtMs: nowMs + engine.retentionMs,
      expiresAtMs: nowMs + 2 * engine.retentionMs,
    }),
  );
  return 'parked';
}

/**
 * Checks for a cancellation request at every heartbeat while the run holds its lease: not at all
 * with the heartbeat off (the request is then seen when the run is resumed), and no more once the
 * lease is lost (a stalled holder must not poll forever).
 */
function watchCancel(ctx: RunContext, input: ExecuteInput): NodeJS.Timeout | undefined {
  const { engine, lease } = input;
  if (engine.heartbeatMs === 0) return undefined;
  const timer = setInterval(() => {
    input.cancelled().then(
      (reason) => {
        if (reason !== undefined) ctx.cancel(reason);
      },
      () => {},
    );
  }, engine.heartbeatMs);
  timer.unref();
  lease.signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  return timer;
}

function deadError(crashes: number, lastError: unknown): IdempotencyError {
  const last =
    typeof lastError === 'object' && lastError !== null && 'message' in lastError
      ? ` The last error recorded: ${String((lastError as StoredError).message)}.`
      : '';
  return new IdempotencyError(
    ErrorCode.WORKFLOW_DEAD,
    `[idem] the run stopped ${crashes} time${crashes === 1 ? '' : 's'} without finishing (its process died or lost the lease), the attempt limit; it is parked.${last} Fix the cause, then resume it with \`idem workflows resume\`.`,
  );
}

function unrecordable(cause: unknown): IdempotencyError {
  return new IdempotencyError(
    ErrorCode.INVALID_OPTIONS,
    `[idem] the workflow's result cannot be recorded (${cause instanceof Error ? cause.message : String(cause)}); return plain data.`,
    { cause },
  );
}
