/**
 * The BullMQ guard: a processor whose effects happen once per job, however often BullMQ runs it.
 * BullMQ runs a job again when it stalls (its worker died, or blocked its event loop past
 * `lockDuration`, and the stalled check put the job back) and when it failed with attempts left.
 * The job's queue and id are an inbox key: the processor runs under its lease and the record
 * completes with the return value before BullMQ is told, so a later run replays that value
 * (BullMQ records it as the job's `returnvalue`) instead of running again.
 *
 * BullMQ is not imported: its errors are recognised by name (`UnrecoverableError`, `DelayedError`,
 * as BullMQ's own worker checks them), so installing Idem does not pull it in.
 */
import { ErrorCode, IdempotencyError } from '../../core/errors.js';
import type { InboxContext, InboxMessage } from '../inbox.js';
import { type JobGuardOptions, jobInbox, jobInProgress, jobMessage, jobMismatch } from './job-guard.js';

/** The parts of a BullMQ `Job` the guard reads; a BullMQ `Job` is one. */
export interface BullJobLike {
  /** The job's id: unique in its queue and the same on every run of the job (stall re-runs, retries). */
  readonly id?: string | undefined;
  /** The job's name: fingerprinted with `data`. */
  readonly name: string;
  /** The queue's name: with `id`, the job's key. */
  readonly queueName: string;
  /** What the job carries: the same id with other name or data is refused as a mismatch. */
  readonly data: unknown;
  /**
   * BullMQ's `job.moveToDelayed(timestampMs, token)`: the guard uses it to put a job back for
   * later, without failing it, when an earlier run of it is still running. Without it (a job
   * object made by hand) such a job fails with `IN_PROGRESS` and BullMQ's retries bring it back.
   */
  moveToDelayed?(timestampMs: number, token?: string): Promise<void>;
}

/**
 * A processor the guard runs: BullMQ's own processor arguments, and the job's claim. Use
 * `context.key` as the idempotency key of calls to other services (stable over every run of the
 * job), and stop when `context.signal` aborts (another worker took the job over).
 */
export type BullJobProcessor<J extends BullJobLike, R> = (
  job: J,
  token: string | undefined,
  signal: AbortSignal | undefined,
  context: InboxContext,
) => R | Promise<R>;

/** The guarded processor: give it to `new Worker(queueName, processor, options)`. */
export type GuardedBullProcessor<J extends BullJobLike, R> = (
  job: J,
  token?: string,
  signal?: AbortSignal,
) => Promise<R>;

/**
 * Wraps a BullMQ processor so that each job's work completes once per queue and job id: a stalled
 * job that BullMQ runs again, or a job re-added under the id of one that completed, replays the
 * stored return value without running. A run that finds an earlier run of the job still holding
 * its key (the stalled worker may be dead, its lease not yet ended) waits for it, up to `waitMs`,
 * then replays or takes over; it never runs beside it. A processor that throws releases the key
 * and the error goes to BullMQ, whose attempts and backoff apply: the next attempt runs again.
 * A job id met again with other data fails the job at once (an error named `UnrecoverableError`,
 * `code` `FINGERPRINT_MISMATCH`, the Idem error as `cause`), without retries.
 *
 * @example
 * ```ts
 * import { Worker, type Job } from 'bullmq';
 * import { guardBullProcessor } from 'idem/messaging';
 * import { RedisStore } from 'idem/redis';
 *
 * const store = new RedisStore({ url: 'redis://127.0.0.1:6379' });
 * const worker = new Worker(
 *   'invoices',
 *   guardBullProcessor(async (job: Job<{ orderId: string }>, _token, _signal, { key }) => {
 *     return await billing.charge(job.data.orderId, { idempotencyKey: key });
 *   }, { store }),
 *   { connection: { host: '127.0.0.1', port: 6379 } },
 * );
 * ```
 */
export function guardBullProcessor<J extends BullJobLike, R>(
  processor: BullJobProcessor<J, R>,
  options: JobGuardOptions,
): GuardedBullProcessor<J, R> {
  if (typeof processor !== 'function') {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      '[idem] [bullmq] guardBullProcessor(processor, options) needs the processor function first.',
    );
  }
  const inbox = jobInbox(options, 'bullmq');
  // Three declared parameters: BullMQ passes the abort signal only to processors that take one.
  return async function guardedBullProcessor(job: J, token?: string, signal?: AbortSignal): Promise<R> {
    const message = jobMessage('bullmq', job?.queueName, job?.id, { name: job?.name, data: job?.data });
    const outcome = await inbox.consume(message, (context) => processor(job, token, signal, context));
    switch (outcome.kind) {
      case 'processed':
        return outcome.value;
      case 'duplicate':
        // Undefined when the first run's value was not stored (over maxResultBytes): the job is done either way.
        return outcome.value as R;
      case 'mismatch':
        throw new UnrecoverableJobError(jobMismatch('bullmq', message));
      case 'in_progress':
        return await postpone(job, token, message, outcome.retryAfterMs);
    }
  };
}

/**
 * An earlier run still holds the job after the wait: its worker is alive (BullMQ saw it stall but
 * it kept going). Put the job back in BullMQ's delayed set until that run's lease would end, as
 * BullMQ's docs do (`moveToDelayed`, then throw `DelayedError`): the job is not failed and no
 * attempt is spent; when it comes back it replays the earlier run's value, or waits again.
 */
async function postpone<J extends BullJobLike>(
  job: J,
  token: string | undefined,
  message: InboxMessage,
  retryAfterMs: number,
): Promise<never> {
  const error = jobInProgress('bullmq', message, retryAfterMs);
  if (typeof job.moveToDelayed !== 'function' || token === undefined) throw error;
  await job.moveToDelayed(Date.now() + Math.max(1, retryAfterMs), token);
  throw new DelayedJobError(error);
}

/** BullMQ fails a job without retrying it when the error's name is `UnrecoverableError`. */
class UnrecoverableJobError extends Error {
  override readonly name = 'UnrecoverableError';
  /** The Idem error code of the cause, so callers can tell this refusal from their own. */
  readonly code: ErrorCode;

  constructor(cause: IdempotencyError) {
    super(cause.message, { cause });
    this.code = cause.code;
  }
}

/** BullMQ leaves a job it was told to delay alone when the error's name is `DelayedError`. */
class DelayedJobError extends Error {
  override readonly name = 'DelayedError';
  /** The Idem error code of the cause. */
  readonly code: ErrorCode;

  constructor(cause: IdempotencyError) {
    super(cause.message, { cause });
    this.code = cause.code;
  }
}
