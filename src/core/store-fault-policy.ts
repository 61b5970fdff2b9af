/**
 * What a face does when its store cannot be reached: fail closed (the default) or run the work
 * without a record, reported. One option name and one meaning on every face that offers it.
 */
import { isStoreTimeout } from './deadlines.js';
import { ErrorCode, IdempotencyError } from './errors.js';

/**
 * When the first claim fails because the store is down or slower than `storeTimeoutMs`:
 * - `'reject'`: fail closed: nothing runs, the caller gets `STORE_UNAVAILABLE` (HTTP 503).
 * - `'run-unprotected'`: the work runs without a record (no replay, no conflict check: a retry
 *   during the outage runs it again), reported as an `unprotected_run` event, the
 *   `idem.unprotected_runs` counter and, over HTTP, the `Idempotent-Unprotected: true` header.
 */
export type OnStoreUnavailable = 'reject' | 'run-unprotected';

/** The values `onStoreUnavailable` takes, the default first. */
export const STORE_FAULT_POLICIES: readonly OnStoreUnavailable[] = ['reject', 'run-unprotected'];

/** Why a claim ran unprotected: the store failed, or gave no answer within `storeTimeoutMs`. */
export type UnprotectedReason = 'store_error' | 'timeout';

/** The answer of `Engine.beginOrUnprotected` when the store could not be asked: run the work without a record. */
export interface UnprotectedRun {
  kind: 'unprotected';
  /** Why: the store failed, or timed out. */
  reason: UnprotectedReason;
  /** The `STORE_UNAVAILABLE` error the claim failed with. */
  error: IdempotencyError;
}

/**
 * The policy `value` names, `'reject'` when undefined; else `INVALID_OPTIONS`, its message starting
 * with `label` (`[idem]`, `[idem] [gateway]`) and naming the values allowed.
 */
export function storeFaultPolicyOf(label: string, value: unknown): OnStoreUnavailable {
  if (value === undefined) return 'reject';
  if (STORE_FAULT_POLICIES.includes(value as OnStoreUnavailable)) return value as OnStoreUnavailable;
  throw new IdempotencyError(
    ErrorCode.INVALID_OPTIONS,
    `${label} onStoreUnavailable must be 'reject' (fail closed, the default) or 'run-unprotected' (run the work without a record while the store is down), got ${JSON.stringify(value) ?? String(value)}.`,
  );
}

/** The reason of an `UnprotectedRun` for the `STORE_UNAVAILABLE` error `error`. */
export function unprotectedReasonOf(error: IdempotencyError): UnprotectedReason {
  return isStoreTimeout(error.cause) ? 'timeout' : 'store_error';
}
