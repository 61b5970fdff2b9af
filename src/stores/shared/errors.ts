/** The errors every store raises the same way, worded alike so a message names its store. */
import { ErrorCode, IdempotencyError } from '../../core/errors.js';

/** `INVALID_OPTIONS` from `store`'s constructor or a call: `message` says what is wrong and ends with its stop. */
export function invalidOptions(store: string, message: string): IdempotencyError {
  return new IdempotencyError(ErrorCode.INVALID_OPTIONS, `[idem] [${store}] ${message}`);
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
