import { ErrorCode, IdempotencyError } from '../core/errors.js';
import type { HttpResponseData } from './http-types.js';

/** One row of the table: what a client is told for an error code. */
interface ProblemEntry {
  status: number;
  /** Stable `type` URI; clients switch on it or on `code`. */
  type: string;
  title: string;
  /**
   * The `detail` clients get, for errors whose own message is for operators (driver errors,
   * internal addresses, configuration): it is never sent. Absent: the error's message is the detail.
   */
  detail?: string;
}

/**
 * The one table from error code to HTTP answer. Every refusal is `application/problem+json`
 * (RFC 9457) with a stable `type` per case; clients can switch on `type` or on `code`.
 */
export const Problems = {
  [ErrorCode.KEY_MISSING]: {
    status: 400,
    type: 'urn:idem:problem:key-missing',
    title: 'Idempotency-Key header required',
  },
  [ErrorCode.KEY_INVALID]: {
    status: 400,
    type: 'urn:idem:problem:key-invalid',
    title: 'Idempotency-Key header is malformed',
  },
  [ErrorCode.IN_PROGRESS]: {
    status: 409,
    type: 'urn:idem:problem:in-progress',
    title: 'A request with this key is still being processed',
  },
  [ErrorCode.FINGERPRINT_MISMATCH]: {
    status: 422,
    type: 'urn:idem:problem:key-reused',
    title: 'This key was used with a different request',
  },
  [ErrorCode.REQUEST_TOO_LARGE]: {
    status: 413,
    type: 'urn:idem:problem:request-too-large',
    title: 'Request body too large',
  },
  [ErrorCode.RESULT_TOO_LARGE]: {
    status: 410,
    type: 'urn:idem:problem:response-not-stored',
    title: 'The first request was acted on but its response was not stored',
  },
  [ErrorCode.STORE_UNAVAILABLE]: {
    status: 503,
    type: 'urn:idem:problem:store-unavailable',
    title: 'Idempotency store unavailable',
    detail: 'The idempotency store could not be used; nothing was run. Retry in a moment with the same key.',
  },
  [ErrorCode.STORE_MISCONFIGURED]: {
    status: 503,
    type: 'urn:idem:problem:store-unavailable',
    title: 'Idempotency store unavailable',
    detail: 'The idempotency store could not be used; nothing was run. Retry in a moment with the same key.',
  },
  [ErrorCode.STORE_CLOSED]: {
    status: 503,
    type: 'urn:idem:problem:store-unavailable',
    title: 'Idempotency store unavailable',
    detail: 'The idempotency store could not be used; nothing was run. Retry in a moment with the same key.',
  },
  [ErrorCode.RESULT_UNREADABLE]: {
    status: 500,
    type: 'urn:idem:problem:response-unreadable',
    title: 'The stored response cannot be read',
    detail:
      'The stored response for this key cannot be read back; the request was not run again. Contact the API owner.',
  },
  [ErrorCode.FINGERPRINT_UNSUPPORTED]: {
    status: 400,
    type: 'urn:idem:problem:body-unsupported',
    title: 'The request body cannot be fingerprinted',
  },
  [ErrorCode.LEASE_LOST]: {
    status: 409,
    type: 'urn:idem:problem:lease-lost',
    title: 'The request took too long and was taken over by a retry',
  },
  [ErrorCode.SCOPE_MISSING]: {
    status: 400,
    type: 'urn:idem:problem:caller-unknown',
    title: 'The request carries no credential to scope its Idempotency-Key by',
  },
  [ErrorCode.UPSTREAM_UNAVAILABLE]: {
    status: 502,
    type: 'urn:idem:problem:upstream-unavailable',
    title: 'The upstream did not answer',
  },
  [ErrorCode.UPSTREAM_TIMEOUT]: {
    status: 504,
    type: 'urn:idem:problem:upstream-timeout',
    title: 'The upstream did not answer in time',
  },
  [ErrorCode.SHUTTING_DOWN]: {
    status: 503,
    type: 'urn:idem:problem:shutting-down',
    title: 'The gateway is shutting down',
  },
  [ErrorCode.REQUEST_INVALID]: {
    status: 400,
    type: 'urn:idem:problem:request-invalid',
    title: 'The request cannot be forwarded as sent',
  },
  [ErrorCode.REQUEST_TIMEOUT]: {
    status: 408,
    type: 'urn:idem:problem:request-timeout',
    title: 'The request did not arrive in time',
  },
  [ErrorCode.NOT_FOUND]: {
    status: 404,
    type: 'urn:idem:problem:not-found',
    title: 'No such endpoint',
  },
  [ErrorCode.INVALID_OPTIONS]: {
    status: 500,
    type: 'urn:idem:problem:misconfigured',
    title: 'Idempotency middleware misconfigured',
    detail: 'The API is misconfigured; nothing was run. Contact the API owner.',
  },
  [ErrorCode.WORKFLOW_CONFLICT]: {
    status: 422,
    type: 'urn:idem:problem:workflow-conflict',
    title: 'Workflow id already used with other input',
  },
  [ErrorCode.WORKFLOW_EXISTS]: {
    status: 409,
    type: 'urn:idem:problem:workflow-exists',
    title: 'Workflow id already started',
  },
  [ErrorCode.WORKFLOW_NOT_FOUND]: {
    status: 404,
    type: 'urn:idem:problem:workflow-not-found',
    title: 'No workflow run with this id',
  },
  [ErrorCode.WORKFLOW_FAILED]: {
    status: 500,
    type: 'urn:idem:problem:workflow-failed',
    title: 'The workflow failed',
    detail: 'The operation failed and was undone where it could be. Contact the API owner.',
  },
  [ErrorCode.WORKFLOW_CANCELLED]: {
    status: 409,
    type: 'urn:idem:problem:workflow-cancelled',
    title: 'The workflow was cancelled',
  },
  [ErrorCode.WORKFLOW_NONDETERMINISM]: {
    status: 500,
    type: 'urn:idem:problem:workflow-parked',
    title: 'The workflow is parked',
    detail: 'The operation is paused for an operator; nothing more was run. Contact the API owner.',
  },
  [ErrorCode.WORKFLOW_DEAD]: {
    status: 500,
    type: 'urn:idem:problem:workflow-parked',
    title: 'The workflow is parked',
    detail: 'The operation is paused for an operator; nothing more was run. Contact the API owner.',
  },
  [ErrorCode.WORKFLOW_UNKNOWN]: {
    status: 500,
    type: 'urn:idem:problem:misconfigured',
    title: 'Idempotency middleware misconfigured',
    detail: 'The API is misconfigured; nothing was run. Contact the API owner.',
  },
  [ErrorCode.STEP_TIMEOUT]: {
    status: 504,
    type: 'urn:idem:problem:step-timeout',
    title: 'A step of the operation timed out',
  },
} as const satisfies Record<ErrorCode, ProblemEntry>;

/** The HTTP answer for an Idem error: status, problem+json body, and `Retry-After` for 409 and 503. */
export function problemResponse(error: IdempotencyError): HttpResponseData {
  const problem: ProblemEntry = Problems[error.code];
  const body = {
    type: problem.type,
    title: problem.title,
    status: problem.status,
    detail: problem.detail ?? error.message.replace(/^\[idem\] /, ''),
    code: error.code,
  };
  const headers: [string, string][] = [['content-type', 'application/problem+json']];
  if (error.retryAfterMs !== undefined)
    headers.push(['retry-after', String(Math.max(1, Math.ceil(error.retryAfterMs / 1000)))]);
  else if (problem.status === 503) headers.push(['retry-after', '1']);
  return { status: problem.status, headers, body: new TextEncoder().encode(JSON.stringify(body)) };
}

/** The error for a request body over `limitBytes`; `sizeBytes` when the size is already known. */
export function requestTooLargeError(limitBytes: number, sizeBytes?: number): IdempotencyError {
  const size = sizeBytes === undefined ? 'over the limit' : `${sizeBytes} bytes, over the limit`;
  return new IdempotencyError(
    ErrorCode.REQUEST_TOO_LARGE,
    `[idem] the request body is ${size} of ${limitBytes} bytes; send a smaller body.`,
  );
}

/** The 413 answer for a request body over `limitBytes`, nothing stored. */
export function requestTooLarge(limitBytes: number, sizeBytes?: number): HttpResponseData {
  return problemResponse(requestTooLargeError(limitBytes, sizeBytes));
}
