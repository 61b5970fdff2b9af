/**
 * Retries and time limits for steps: the pause before each attempt, an attempt raced against its
 * timeout, and waits that stop when the run loses its lease.
 */
import { ErrorCode, IdempotencyError } from '../core/errors.js';
import type { RetryOptions } from './types.js';

export interface RetryPolicy {
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
}

/** `options` checked, with the defaults: 3 attempts, 100 ms doubling up to 10 s. */
export function retryPolicy(options: RetryOptions | undefined): RetryPolicy {
  const policy = { maxAttempts: 3, baseMs: 100, maxMs: 10_000, ...options };
  if (!Number.isSafeInteger(policy.maxAttempts) || policy.maxAttempts < 1) {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      `[idem] retries.maxAttempts must be a whole number of at least 1 (1: no retry), got ${policy.maxAttempts}.`,
    );
  }
  for (const name of ['baseMs', 'maxMs'] as const) {
    if (!Number.isFinite(policy[name]) || policy[name] < 0) {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] retries.${name} must be 0 or more milliseconds, got ${policy[name]}.`,
      );
    }
  }
  return policy;
}

/**
 * The pause after failed attempt `attempt` (1-based): `baseMs` doubled per failure, capped at
 * `maxMs`, with up to half of it random so that many runs failing together do not retry together.
 */
export function pauseBefore(attempt: number, policy: RetryPolicy): number {
  const full = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(full / 2 + (Math.random() * full) / 2);
}

/** Waits until `atMs` (by `now`), or rejects with the signal's reason when it aborts first. */
export function waitFor(atMs: number | undefined, now: () => number, signal: AbortSignal): Promise<void> {
  const ms = atMs === undefined ? 0 : atMs - now();
  if (signal.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs one attempt; with `timeoutMs`, it fails with `STEP_TIMEOUT` when it runs longer (its
 * signal aborts so the function can stop; a function that ignores it keeps running unobserved).
 */
export async function attemptOnce<T>(
  run: (signal: AbortSignal) => Promise<T> | T,
  timeoutMs: number | undefined,
  leaseSignal: AbortSignal,
  name: string,
): Promise<T> {
  if (timeoutMs === undefined) return run(leaseSignal);
  const controller = new AbortController();
  const signal = AbortSignal.any([leaseSignal, controller.signal]);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new IdempotencyError(
        ErrorCode.STEP_TIMEOUT,
        `[idem] step "${name}" ran longer than its timeoutMs (${timeoutMs} ms).`,
      );
      controller.abort(error);
      reject(error);
    }, timeoutMs);
  });
  try {
    return await Promise.race([Promise.resolve().then(() => run(signal)), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
