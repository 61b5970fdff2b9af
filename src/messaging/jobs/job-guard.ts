/**
 * What the BullMQ and pg-boss guards share: the inbox each one builds from its options, the inbox
 * message of a job (its queue and id as the message id, its data as the payload), and the errors
 * both throw. A job is a message that its queue delivers at least once; the guards are the inbox
 * put where a job queue calls its processor.
 */
import { DEFAULT_LEASE_MS } from '../../core/engine.js';
import { ErrorCode, IdempotencyError } from '../../core/errors.js';
import { Inbox, type InboxMessage, type InboxOptions } from '../inbox.js';

/** The job queues the guards are for, as they name themselves in messages and default consumers. */
export type JobQueueKind = 'bullmq' | 'pg-boss';

export interface JobGuardOptions extends Omit<InboxOptions, 'consumer' | 'waitMs'> {
  /**
   * The name (1 to 200 characters) that keeps this processor's job records apart from other
   * processors' that run jobs with the same queue name and id (another app on another Redis, a
   * rewrite of the processor that must run every job again). Default `'bullmq'` for
   * `guardBullProcessor`, `'pg-boss'` for `guardPgBossHandler`.
   */
  consumer?: string;
  /**
   * When a job comes while an earlier run of it still holds its key (BullMQ re-ran a stalled job;
   * pg-boss retried an expired one), wait up to this long (ms) for that run to finish, or for its
   * lease to run out if its worker died, and then replay its result or take the job over.
   * Default `leaseMs`: enough for a dead worker's lease to end.
   */
  waitMs?: number;
}

/** The inbox a guard claims its jobs' keys with: waiting for an earlier run, by default, as long as a lease lasts. */
export function jobInbox(options: JobGuardOptions, kind: JobQueueKind): Inbox {
  if (options === null || typeof options !== 'object') {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      `[idem] [${kind}] the guard needs options with a store: { store }.`,
    );
  }
  const waitMs = options.waitMs ?? options.leaseMs ?? DEFAULT_LEASE_MS;
  return new Inbox({ ...options, consumer: options.consumer ?? kind, waitMs });
}

/**
 * The inbox message of a job: id `<queue>:<job id>`, which no other pair spells: BullMQ refuses a
 * ':' in queue names (the first ':' ends the queue), pg-boss job ids are UUIDs (the last one does).
 */
export function jobMessage(kind: JobQueueKind, queue: unknown, id: unknown, payload: unknown): InboxMessage {
  if (typeof queue !== 'string' || queue === '' || typeof id !== 'string' || id === '') {
    throw new IdempotencyError(
      ErrorCode.KEY_MISSING,
      `[idem] [${kind}] the job has no queue name or no id (queue ${JSON.stringify(queue)}, id ${JSON.stringify(id)}): the guard keys a job by both; pass the job ${kind === 'bullmq' ? 'BullMQ' : 'pg-boss'} gave the processor.`,
    );
  }
  return { id: `${queue}:${id}`, payload };
}

/** The job's id was processed before with other data: running it would be another job under an old id. */
export function jobMismatch(kind: JobQueueKind, message: InboxMessage): IdempotencyError {
  return new IdempotencyError(
    ErrorCode.FINGERPRINT_MISMATCH,
    `[idem] [${kind}] job ${message.id} was processed before with other data; it did not run. A job id names one job: add new work under a new id (or a new consumer).`,
  );
}

/** An earlier run of the job still holds its key after the wait: its worker is alive and busy. */
export function jobInProgress(kind: JobQueueKind, message: InboxMessage, retryAfterMs: number): IdempotencyError {
  return new IdempotencyError(
    ErrorCode.IN_PROGRESS,
    `[idem] [${kind}] job ${message.id} is still being run by an earlier run that holds its key (its lease ends in ${retryAfterMs} ms); it did not run here. It runs, or replays that run's result, on its next attempt: give the queue retries, or raise waitMs.`,
    { retryAfterMs },
  );
}
