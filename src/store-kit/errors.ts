/** The errors every store raises the same way, worded alike so a message names its store. */
import {
  ErrorCode,
  IdempotencyError,
  isIdempotencyError,
  storeMisconfigured,
  storeUnavailable,
} from '../core/errors.js';

/** `INVALID_OPTIONS` from `store`'s constructor or a call: `message` says what is wrong and ends with its stop. */
export function invalidOptions(store: string, message: string): IdempotencyError {
  return new IdempotencyError(ErrorCode.INVALID_OPTIONS, `[idem] [${store}] ${message}`);
}

/**
 * Refuses with `INVALID_OPTIONS` unless exactly one of the caller's own connection (`given`,
 * named `name`: `pool`, `client`) and a `url` is set.
 */
export function checkOneConnection(store: string, name: string, given: unknown, url: string | undefined): void {
  if ((given === undefined) === (url === undefined)) {
    throw invalidOptions(
      store,
      `give either \`${name}\` (one you manage) or \`url\` (the store opens its own), exactly one.`,
    );
  }
}

/**
 * `STORE_CLOSED`: the store was used after `close()`. `className` names what to create instead;
 * `operation`, when given, opens the message (`claim after close(): ...`).
 */
export function storeClosed(store: string, className: string, operation?: string): IdempotencyError {
  const what = operation === undefined ? '' : `${operation} after close(): `;
  return new IdempotencyError(
    ErrorCode.STORE_CLOSED,
    `[idem] [${store}] ${what}the store was closed; create a new ${className}.`,
  );
}

/**
 * Says what to fix when a driver error is a configuration mistake (wrong password, unknown
 * database, missing permission), or `undefined` when it is not one (an outage, a timeout).
 */
export type MisconfigurationAdvice = (error: unknown) => string | undefined;

/**
 * The error for a driver failure in `operation`: `STORE_MISCONFIGURED` when `adviceFor` recognises
 * a configuration mistake, else `STORE_UNAVAILABLE`; Idem's own errors pass through as they are.
 * The driver's error is kept as `cause` either way.
 */
export function storeFailure(
  store: string,
  operation: string,
  error: unknown,
  adviceFor: MisconfigurationAdvice,
): IdempotencyError {
  if (isIdempotencyError(error)) return error;
  const advice = adviceFor(error);
  return advice === undefined
    ? storeUnavailable(store, operation, error)
    : storeMisconfigured(store, operation, error, advice);
}
