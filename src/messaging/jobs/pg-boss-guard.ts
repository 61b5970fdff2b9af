/**
 * The pg-boss guard: a work handler whose effects happen once per job, however often pg-boss
 * hands the job out. pg-boss gives a job again when it failed with retries left, and when it
 * expired (its worker died, or ran past `expireInSeconds`: pg-boss then fails the job and retries
 * it while the old handler may still be running). The job's queue and id are an inbox key: the
 * handler runs under its lease and the record completes with the return value before pg-boss is
 * told, so a later delivery returns that value (pg-boss stores it as the job's output) without
 * running again. pg-boss is not imported.
 */
import { ErrorCode, IdempotencyError } from '../../core/errors.js';
import type { InboxContext } from '../inbox.js';
import { type JobGuardOptions, jobInbox, jobInProgress, jobMessage, jobMismatch } from './job-guard.js';

/** The parts of a pg-boss job the guard reads; a pg-boss `Job` (with or without metadata) is one. */
export interface PgBossJobLike {
  /** The job's id (a UUID): the same on every delivery of the job (retries, expiry). */
  readonly id: string;
  /** The queue's name: with `id`, the job's key. */
  readonly name: string;
  /** What the job carries: the same id with other data is refused as a mismatch. */
  readonly data: unknown;
}

/**
 * A handler the guard runs, for one job. Use `context.key` as the idempotency key of calls to
 * other services (stable over every delivery of the job), and stop when `context.signal` aborts.
 */
export type PgBossJobHandler<J extends PgBossJobLike, R> = (job: J, context: InboxContext) => R | Promise<R>;

/**
 * The guarded work handler: give it to `boss.work(queue, options, handler)`. It runs the batch's
 * jobs one after the other and returns the job's value for a batch of one (pg-boss stores it as
 * the output), the values in order for a larger batch.
 */
export type GuardedPgBossHandler<J extends PgBossJobLike, R> = (jobs: J[]) => Promise<R | R[]>;

/**
 * Wraps a pg-boss handler (written for one job) so that each job's work completes once per queue
 * and job id: a retried or expired job that pg-boss hands out again, or a job sent again under
 * the id of one that completed, returns the stored value without running. A delivery that finds
 * an earlier run of the job still holding its key waits for it, up to `waitMs`, then replays or
 * takes over; it never runs beside it; if that run is still going after the wait, the job fails
 * with `IN_PROGRESS` and pg-boss's retries bring it back. A handler that throws releases the key
 * and fails the job, so the retry runs again. A job id met again with other data fails with
 * `FINGERPRINT_MISMATCH`, on every retry, without running (pg-boss has no unrecoverable error).
 *
 * @example
 * ```ts
 * import PgBoss from 'pg-boss';
 * import { guardPgBossHandler } from 'idem/messaging';
 * import { PostgresStore } from 'idem/postgres';
 *
 * const url = 'postgres://app@127.0.0.1:5432/app';
 * const boss = new PgBoss(url);
 * await boss.start();
 * await boss.createQueue('welcome-emails');
 * await boss.work(
 *   'welcome-emails',
 *   guardPgBossHandler(async (job: PgBoss.Job<{ userId: string }>, { key }) => {
 *     return await mailer.sendWelcome(job.data.userId, { idempotencyKey: key });
 *   }, { store: new PostgresStore({ url }) }),
 * );
 * ```
 */
export function guardPgBossHandler<J extends PgBossJobLike, R>(
  handler: PgBossJobHandler<J, R>,
  options: JobGuardOptions,
): GuardedPgBossHandler<J, R> {
  if (typeof handler !== 'function') {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      '[idem] [pg-boss] guardPgBossHandler(handler, options) needs the handler function first.',
    );
  }
  const inbox = jobInbox(options, 'pg-boss');

  async function once(job: J): Promise<R> {
    const message = jobMessage('pg-boss', job?.name, job?.id, job?.data ?? null);
    const outcome = await inbox.consume(message, (context) => handler(job, context));
    switch (outcome.kind) {
      case 'processed':
        return outcome.value;
      case 'duplicate':
        // Undefined when the first run's value was not stored (over maxResultBytes): the job is done either way.
        return outcome.value as R;
      case 'mismatch':
        throw jobMismatch('pg-boss', message);
      case 'in_progress':
        throw jobInProgress('pg-boss', message, outcome.retryAfterMs);
    }
  }

  return async function guardedPgBossHandler(jobs: J[]): Promise<R | R[]> {
    const batch = Array.isArray(jobs) ? jobs : [jobs];
    const values: R[] = [];
    // One after the other, stopping at the first failure: pg-boss fails the whole batch then, and
    // the jobs that completed before it replay on the retry.
    for (const job of batch) values.push(await once(job));
    return values.length === 1 ? (values[0] as R) : values;
  };
}
