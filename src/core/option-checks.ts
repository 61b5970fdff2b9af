/** Checks of numeric options that every face shares, so each refuses bad input with the same words. */
import { ErrorCode, IdempotencyError } from './errors.js';

/** The longest delay Node's timers keep, in ms: a longer one fires after 1 ms instead. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * `value` when it is a whole number from `min` to `max`; else `INVALID_OPTIONS`, its message
 * starting with `label` (`[idem] [sweeper]`) and naming the option and the range.
 */
export function wholeOption(
  label: string,
  name: string,
  value: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`;
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      `${label} ${name} must be a whole number ${range}, got ${String(value)}.`,
    );
  }
  return value;
}
