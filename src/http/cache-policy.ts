import { ErrorCode, IdempotencyError } from '../core/errors.js';

/** Which responses are stored: `default`, `stripe`, or your own test of the status. */
export type CachePolicy = 'default' | 'stripe' | ((status: number) => boolean);

/**
 * Statuses the `default` policy does not store, besides every 5xx. Each says the request was
 * refused before anything happened, or should be tried again, so the same key must be free for
 * the corrected request or the retry:
 * - 400, 422: the input failed validation;
 * - 401, 403: not authenticated or not allowed (the retry comes with other credentials or rights);
 * - 404: the target does not exist (yet);
 * - 408, 409, 429: timed out, conflicted, or rate-limited: try again.
 */
export const NOT_STORED_BY_DEFAULT: ReadonlySet<number> = new Set([400, 401, 403, 404, 408, 409, 422, 429]);

/** The policy as a test of the status: true when a response with that status is stored. */
export function storesStatus(policy: CachePolicy): (status: number) => boolean {
  if (typeof policy === 'function') return policy;
  if (policy === 'stripe') return () => true;
  if (policy === 'default') return (status) => status < 500 && !NOT_STORED_BY_DEFAULT.has(status);
  throw new IdempotencyError(
    ErrorCode.INVALID_OPTIONS,
    `[idem] policy must be 'default', 'stripe' or a function of the status, got ${String(policy)}.`,
  );
}
