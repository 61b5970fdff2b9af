/**
 * Atomic SQL steps: a workflow step whose SQL writes and whose record commit in one transaction
 * of the user's own database, so a re-run can neither repeat the writes nor lose the record.
 * `StepDatabase` is the contract; `postgresSteps`, `sqliteSteps` and `mysqlSteps` implement it
 * (through `SqlStepDatabase`). This file also holds the input checks and the errors they share.
 */
import { ErrorCode, IdempotencyError, isIdempotencyError } from '../../core/errors.js';
import type { MisconfigurationAdvice } from '../../store-kit/errors.js';

/** Which step of which run a row is about. */
export interface StepRef {
  /** The run: 1 to 255 UTF-8 bytes. */
  runId: string;
  /** The step's position in the run: a whole number from 0 to 2147483647. */
  stepIndex: number;
}

/** A step about to run: where it is, and its name (kept for operators; not part of its identity). */
export interface StepIdentity extends StepRef {
  /** The step's name, as the workflow gave it. */
  name: string;
}

/** A step row as it was committed. */
export interface RecordedStep {
  /** The step's name when it ran. */
  name: string;
  /** The bytes its `fn` returned, as they were committed. */
  data: Uint8Array;
}

/** What `runOnce` answers. */
export interface StepOutcome {
  /** The step's recorded bytes: what `fn` returned, this time or when the step first committed. */
  data: Uint8Array;
  /** True when this call ran `fn` and committed; false when the step was recorded already. */
  ran: boolean;
}

/**
 * A database that records workflow steps in the same transaction as the step's own SQL writes.
 * Made by `postgresSteps`, `sqliteSteps` or `mysqlSteps`; `Tx` is what the step's `fn` runs its
 * statements on (the connection that holds the transaction).
 */
export interface StepDatabase<Tx> {
  /** 'postgres' | 'sqlite' | 'mysql', for messages. */
  readonly dialect: string;
  /**
   * Runs `fn(tx)` and writes the step row (runId, stepIndex, name, data) in ONE transaction, unless
   * a row for (runId, stepIndex) exists already: then returns its data without running `fn`
   * (`ran: false`). Two holders running the same step at once: exactly one commits; the other's
   * transaction rolls back (unique violation, deadlock or lock) and it returns the committed row's
   * data (`ran: false`). `fn` returns the bytes to record (the runtime encodes the step's value);
   * it must not commit or roll back the transaction itself. When the server rolls the transaction
   * back for a deadlock or serialization failure, `fn` runs again (up to 5 times in all), so it
   * should change nothing but through `tx`.
   * Throws what `fn` throws, after rolling the transaction back (no row written), unless the same
   * step was committed meanwhile by another holder: then that row is returned (`ran: false`), since
   * the step is done. Database failures throw `STORE_UNAVAILABLE` (or `STORE_MISCONFIGURED` when the
   * server refuses the configuration); a retry is safe either way.
   */
  runOnce(step: StepIdentity, fn: (tx: Tx) => Promise<Uint8Array>): Promise<StepOutcome>;
  /** The recorded data for the step, or undefined: read outside any transaction. */
  recorded(step: StepRef): Promise<RecordedStep | undefined>;
  /**
   * Deletes step rows created before `beforeMs` (ms since epoch), oldest first, at most `limit`
   * (a whole number of at least 1; default 1000); returns how many.
   */
  sweep(beforeMs: number, limit?: number): Promise<number>;
}

/** The longest run id, in UTF-8 bytes: what MySQL's `VARBINARY(255)` key holds. */
export const MAX_RUN_ID_BYTES = 255;
const MAX_STEP_INDEX = 2 ** 31 - 1;

/** `[idem] [postgres steps]`: how messages name a step database. */
function label(dialect: string): string {
  return `[idem] [${dialect} steps]`;
}

/** `INVALID_OPTIONS` from a step database: `message` says what is wrong and what to do. */
export function stepMisuse(dialect: string, message: string): IdempotencyError {
  return new IdempotencyError(ErrorCode.INVALID_OPTIONS, `${label(dialect)} ${message}`);
}

/** Throws `INVALID_OPTIONS` unless `step` names a run and a step the tables can hold. */
export function checkStepRef(dialect: string, step: StepRef): void {
  const { runId, stepIndex } = step;
  if (typeof runId !== 'string' || runId === '' || Buffer.byteLength(runId) > MAX_RUN_ID_BYTES) {
    throw stepMisuse(
      dialect,
      `runId must be a string of 1 to ${MAX_RUN_ID_BYTES} UTF-8 bytes, got ${describe(runId)}.`,
    );
  }
  if (!Number.isInteger(stepIndex) || stepIndex < 0 || stepIndex > MAX_STEP_INDEX) {
    throw stepMisuse(
      dialect,
      `stepIndex must be a whole number from 0 to ${MAX_STEP_INDEX}, got ${describe(stepIndex)}.`,
    );
  }
}

/** `checkStepRef`, and the name must be a string. */
export function checkStepIdentity(dialect: string, step: StepIdentity): void {
  checkStepRef(dialect, step);
  if (typeof step.name !== 'string') {
    throw stepMisuse(dialect, `the step name must be a string, got ${describe(step.name)}.`);
  }
}

/** Throws `INVALID_OPTIONS` unless `fn` resolved to bytes; the caller has rolled back already. */
export function checkStepData(dialect: string, data: unknown): asserts data is Uint8Array {
  if (!(data instanceof Uint8Array)) {
    throw stepMisuse(
      dialect,
      `the step's fn must resolve to a Uint8Array (the bytes to record), got ${describe(data)}; its transaction was rolled back.`,
    );
  }
}

/** Throws `INVALID_OPTIONS` unless `beforeMs` is a time in ms. */
export function checkSweepTime(dialect: string, beforeMs: number): void {
  if (!Number.isSafeInteger(beforeMs)) {
    throw stepMisuse(
      dialect,
      `sweep(): beforeMs must be a whole number of ms since the epoch, got ${describe(beforeMs)}.`,
    );
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (value === null || typeof value !== 'object') return String(value);
  return value.constructor?.name ?? 'an object';
}

/**
 * One of our own statements failed (not the user's `fn`): `operation` says which, for the message.
 * Thrown inside an attempt, turned into an `IdempotencyError` once retries are over.
 */
export class StatementFailed extends Error {
  readonly operation: string;

  constructor(operation: string, cause: unknown) {
    super(`${operation} failed`, { cause });
    this.operation = operation;
  }
}

/** Runs one of our statements, so that its failure names what failed (`StatementFailed`). */
export async function statement<T>(operation: string, run: () => T | Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw error instanceof StatementFailed ? error : new StatementFailed(operation, error);
  }
}

/** What happened to the step when `operation` failed: said at the end of its error. */
export type FailureContext = 'step' | 'read';

/** How a dialect reads its driver's errors. */
export interface DriverErrors {
  dialect: string;
  /** True when the transaction died of a deadlock or a serialization failure: running it again is the remedy. */
  isRetryable(error: unknown): boolean;
  /** What to fix when the error is a configuration mistake; `undefined` for an outage. */
  misconfiguration: MisconfigurationAdvice;
}

const AFTER: Record<FailureContext, string> = {
  step: "The step's transaction was rolled back and no row was written; retry runOnce (if the connection broke during COMMIT and the step did commit, the retry returns its recorded data).",
  read: 'Nothing was changed; check that the database is reachable and retry.',
};

/**
 * The error for our statement `operation` failing with the driver's `error`: `STORE_MISCONFIGURED`
 * when the server refuses the configuration, else `STORE_UNAVAILABLE`; Idem's own errors pass as
 * they are. The driver's error is kept as `cause`.
 */
export function stepFailure(
  driver: DriverErrors,
  operation: string,
  error: unknown,
  context: FailureContext,
): IdempotencyError {
  if (isIdempotencyError(error)) return error;
  const reason = (error instanceof Error ? error.message : String(error)).replace(/[.\s]+$/, '');
  const advice = driver.misconfiguration(error);
  if (advice !== undefined) {
    return new IdempotencyError(
      ErrorCode.STORE_MISCONFIGURED,
      `${label(driver.dialect)} ${operation} refused: ${reason}: ${advice}. ${AFTER[context]}`,
      { cause: error },
    );
  }
  return new IdempotencyError(
    ErrorCode.STORE_UNAVAILABLE,
    `${label(driver.dialect)} ${operation} failed: ${reason}. ${AFTER[context]}`,
    { cause: error },
  );
}

/** Runs `read` (our statements only), turning a failure into `stepFailure(..., 'read')`. */
export async function readOperation<T>(driver: DriverErrors, operation: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    const failed = error instanceof StatementFailed ? error : new StatementFailed(operation, error);
    throw stepFailure(driver, failed.operation, failed.cause, 'read');
  }
}
