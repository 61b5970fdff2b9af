/** What stops or shapes a run from inside its body: the suspension of a sleep or a wait, and the errors of recording. */
import { ErrorCode, IdempotencyError } from '../core/errors.js';
import { defaultSerializer } from '../core/value-codec.js';

/** Thrown through the body when the run lets go of its lease to sleep until `wakeAtMs`. */
export class Suspend extends Error {
  /**
   * @param wakeAtMs when a worker takes the run up again
   * @param ready for a wait: whether what it waits for came meanwhile, asked once the lease is let
   *   go, so a signal sent between the run's look and its letting go wakes it at once
   */
  constructor(
    readonly wakeAtMs: number,
    readonly ready?: () => Promise<boolean>,
  ) {
    super('[idem] the workflow is sleeping');
  }
}

/** The value's bytes, or a clear error when it cannot be recorded (a function, a class with private state...). */
export function encodeValue(name: string, value: unknown): Uint8Array {
  try {
    return defaultSerializer.encode(value);
  } catch (cause) {
    throw unrecordable(name, cause);
  }
}

export function unrecordable(name: string, cause: unknown): IdempotencyError {
  return new IdempotencyError(
    ErrorCode.INVALID_OPTIONS,
    `[idem] step "${name}" returned a value that cannot be recorded (${cause instanceof Error ? cause.message : String(cause)}); return plain data (objects, arrays, strings, numbers, Dates, Maps...).`,
    { cause },
  );
}

export function leaseLost(key: string): IdempotencyError {
  return new IdempotencyError(
    ErrorCode.LEASE_LOST,
    `[idem] lease lost for workflow run ${key}: another worker took it over; this holder stops and records nothing more.`,
    { key },
  );
}

export function compensationFailed(name: string, cause: unknown): IdempotencyError {
  return new IdempotencyError(
    ErrorCode.WORKFLOW_DEAD,
    `[idem] the undo of step "${name}" kept failing (${cause instanceof Error ? cause.message : String(cause)}); the run is parked. Fix the cause, then resume it with \`idem workflows resume\`.`,
    { cause },
  );
}
