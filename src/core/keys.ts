import { hashText } from './canonical.js';
import { ErrorCode, IdempotencyError } from './errors.js';

/** Longest caller key accepted by default, in characters (the IETF draft and Stripe use 255). */
export const MAX_KEY_LENGTH = 255;

/**
 * Checks a caller's key: a non-empty string of at most `maxLength` characters.
 * Throws `KEY_MISSING` for `undefined`, `null` or `''`, and `KEY_INVALID` otherwise.
 */
export function validateKey(key: unknown, maxLength = MAX_KEY_LENGTH): string {
  if (key === undefined || key === null || key === '') {
    throw new IdempotencyError(ErrorCode.KEY_MISSING, '[idem] no idempotency key: give a non-empty string key.');
  }
  if (typeof key !== 'string') {
    throw new IdempotencyError(
      ErrorCode.KEY_INVALID,
      `[idem] the idempotency key must be a string, got ${typeof key}: convert it with String() in your key function.`,
    );
  }
  if (key.length > maxLength) {
    throw new IdempotencyError(
      ErrorCode.KEY_INVALID,
      `[idem] the idempotency key is ${key.length} characters long; the limit is ${maxLength}. Use a UUID or a hash of the longer identifier.`,
    );
  }
  return key;
}

/**
 * The key under which a record is stored: a hash of namespace, scope and the caller's key,
 * so the raw key is not kept at rest and two scopes can never meet on one record.
 * Each part is length-prefixed, so no choice of parts can collide with another.
 */
export function storeKeyOf(namespace: string, scope: string, key: string): string {
  return hashText(`${namespace.length}:${namespace}|${scope.length}:${scope}|${key}`);
}
