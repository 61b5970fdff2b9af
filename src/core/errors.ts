/**
 * Every error Idem raises on purpose is an `IdempotencyError` with a string `code`.
 * Check the code with `isIdempotencyError(e, 'IN_PROGRESS')`, not with `instanceof`:
 * two copies of the package in one process would make `instanceof` lie.
 */
export const ErrorCode = {
  /** A key was required and none was given. */
  KEY_MISSING: 'KEY_MISSING',
  /** The key is empty, too long or holds characters that are not allowed. */
  KEY_INVALID: 'KEY_INVALID',
  /** Another caller holds the lease on this key and has not finished. */
  IN_PROGRESS: 'IN_PROGRESS',
  /** The key was first used with other arguments (another request body). */
  FINGERPRINT_MISMATCH: 'FINGERPRINT_MISMATCH',
  /** This holder's lease was taken over; its result was not stored. */
  LEASE_LOST: 'LEASE_LOST',
  /** The store could not be reached or did not answer in time. Nothing ran. */
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE',
  /**
   * The store's server refused the store's configuration: wrong user or password, unknown
   * database, missing permission. Nothing ran; retrying will not help until the configuration
   * (the store URL, the grants) is fixed.
   */
  STORE_MISCONFIGURED: 'STORE_MISCONFIGURED',
  /** The outcome is larger than the store is allowed to keep. */
  RESULT_TOO_LARGE: 'RESULT_TOO_LARGE',
  /** A value cannot be put in canonical form (functions, symbols, class instances, cycles...). */
  FINGERPRINT_UNSUPPORTED: 'FINGERPRINT_UNSUPPORTED',
  /** An option is missing or out of range. */
  INVALID_OPTIONS: 'INVALID_OPTIONS',
  /** A stored result could not be read back (wrong encryption key, corrupted bytes). */
  RESULT_UNREADABLE: 'RESULT_UNREADABLE',
  /** The request body is larger than the configured limit; nothing was stored or run. */
  REQUEST_TOO_LARGE: 'REQUEST_TOO_LARGE',
  /** The store was used after `close()`. */
  STORE_CLOSED: 'STORE_CLOSED',
  /** A keyed request carries no credential to scope its key by, and anonymous callers are not allowed to share keys. */
  SCOPE_MISSING: 'SCOPE_MISSING',
  /** Gateway: the upstream could not be reached, or broke off its response. */
  UPSTREAM_UNAVAILABLE: 'UPSTREAM_UNAVAILABLE',
  /** Gateway: the upstream stayed silent longer than its timeout. */
  UPSTREAM_TIMEOUT: 'UPSTREAM_TIMEOUT',
  /** Gateway: shutting down; the request was cut off or not forwarded. */
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  /** Gateway: the request cannot be forwarded as sent (request target, path, framing). */
  REQUEST_INVALID: 'REQUEST_INVALID',
  /** Gateway: the client did not send its whole request in time. */
  REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
  /** Gateway: no such endpoint of the gateway's own (under `/__idem/`). */
  NOT_FOUND: 'NOT_FOUND',
  /** Workflow: the id was started before with another workflow or other input. */
  WORKFLOW_CONFLICT: 'WORKFLOW_CONFLICT',
  /** Workflow: the id exists and the start asked to refuse it (`ifExists: 'refuse'`). */
  WORKFLOW_EXISTS: 'WORKFLOW_EXISTS',
  /** Workflow: no run with this id (or its record has expired). */
  WORKFLOW_NOT_FOUND: 'WORKFLOW_NOT_FOUND',
  /** Workflow: the run gave up; `cause` is the error that made it give up (compensations, if any, ran). */
  WORKFLOW_FAILED: 'WORKFLOW_FAILED',
  /** Workflow: the run was cancelled (compensations, if any, ran). */
  WORKFLOW_CANCELLED: 'WORKFLOW_CANCELLED',
  /** Workflow: the code no longer matches the run's journal (a step renamed, reordered or removed); the run is parked. */
  WORKFLOW_NONDETERMINISM: 'WORKFLOW_NONDETERMINISM',
  /** Workflow: the run was parked after too many attempts, or a compensation failed; `idem workflows resume` continues it. */
  WORKFLOW_DEAD: 'WORKFLOW_DEAD',
  /** Workflow: no workflow of this name (and version) is defined in this process. */
  WORKFLOW_UNKNOWN: 'WORKFLOW_UNKNOWN',
  /** Workflow: a step ran longer than its `timeoutMs`. */
  STEP_TIMEOUT: 'STEP_TIMEOUT',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface IdempotencyErrorOptions {
  /** The underlying error, kept as `cause`. */
  cause?: unknown;
  /** The store key (hashed) the error is about, when there is one. */
  key?: string;
  /** For `IN_PROGRESS`: how long, in milliseconds, until the current lease ends. */
  retryAfterMs?: number;
}

export class IdempotencyError extends Error {
  override readonly name = 'IdempotencyError' as const;
  readonly code: ErrorCode;
  readonly key: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode, message: string, options: IdempotencyErrorOptions = {}) {
    super(message.startsWith('[idem]') ? message : `[idem] ${message}`, { cause: options.cause });
    this.code = code;
    this.key = options.key;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** True when `e` is an Idem error, and, when `code` is given, one with that code. */
export function isIdempotencyError(e: unknown, code?: ErrorCode): e is IdempotencyError {
  if (typeof e !== 'object' || e === null) return false;
  const candidate = e as { name?: unknown; code?: unknown };
  if (candidate.name !== 'IdempotencyError' || typeof candidate.code !== 'string') return false;
  return code === undefined || candidate.code === code;
}

/** Wraps a driver error as `STORE_UNAVAILABLE`, leaving Idem's own errors as they are. */
export function storeUnavailable(storeName: string, operation: string, cause: unknown): IdempotencyError {
  if (isIdempotencyError(cause)) return cause;
  const reason = (cause instanceof Error ? cause.message : String(cause)).replace(/[.\s]+$/, '');
  return new IdempotencyError(
    ErrorCode.STORE_UNAVAILABLE,
    `[idem] [${storeName}] ${operation} failed: ${reason}. Nothing was run; check that the store is reachable and retry.`,
    { cause },
  );
}

/**
 * `STORE_MISCONFIGURED`: the store's server refused the configuration (`cause`, the driver's
 * error, says how); `advice` says what to fix, e.g. `check the user and password in the store URL`.
 */
export function storeMisconfigured(
  storeName: string,
  operation: string,
  cause: unknown,
  advice: string,
): IdempotencyError {
  const reason = (cause instanceof Error ? cause.message : String(cause)).replace(/[.\s]+$/, '');
  return new IdempotencyError(
    ErrorCode.STORE_MISCONFIGURED,
    `[idem] [${storeName}] ${operation} refused: ${reason}: ${advice}. Nothing was run; this is a configuration mistake, not an outage, so retrying will not help.`,
    { cause },
  );
}
