/**
 * What every SQL outbox does around its statements: its connection opened on first use (and the
 * table created then), refusal after `close()`, driver errors mapped to `STORE_UNAVAILABLE` or
 * `STORE_MISCONFIGURED`, while errors of the caller's own code (`publish`, `retryAtMs`) pass through.
 */
import type { MisconfigurationAdvice } from '../../store-kit/errors.js';
import { LazyClient, type LazyClientOptions } from '../../store-kit/lazy-client.js';
import { outboxClosed, outboxFailure } from './outbox-rules.js';

/** An error of the caller's code, carried through the mapping of driver errors and thrown as it was. */
export class CallerFailed {
  readonly error: unknown;

  constructor(error: unknown) {
    this.error = error;
  }
}

/** Runs the caller's `fn`; what it throws is carried as a `CallerFailed`, so it is not taken for a driver error. */
export async function callerCode<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw new CallerFailed(error);
  }
}

export interface OutboxOperationsOptions<C> extends LazyClientOptions<C> {
  /** 'postgres' | 'sqlite' | 'mysql': opens every message. */
  dialect: string;
  /** The factory to call again after `close()`, named in `STORE_CLOSED` (`postgresOutbox`). */
  factory: string;
  /** What to fix for a driver error that is a configuration mistake. */
  misconfiguration: MisconfigurationAdvice;
  /** The store's own error for a driver error it explains better (SQLite's locked file); default none. */
  explain?(operation: string, error: unknown): Error | undefined;
}

/** The one wrapper around every operation of an outbox (but `enqueue`, which runs on the caller's transaction). */
export class OutboxOperations<C> {
  readonly #client: LazyClient<C>;
  readonly #options: OutboxOperationsOptions<C>;

  constructor(options: OutboxOperationsOptions<C>) {
    this.#client = new LazyClient(options);
    this.#options = options;
  }

  get closed(): boolean {
    return this.#client.closed;
  }

  /** Throws `STORE_CLOSED` once `close()` was called. */
  checkOpen(operation: string): void {
    if (this.#client.closed) throw outboxClosed(this.#options.dialect, operation, this.#options.factory);
  }

  /** Runs `body` with the ready client (opened, table created): refused after close, errors mapped. */
  async run<T>(operation: string, body: (client: C) => T | Promise<T>): Promise<T> {
    this.checkOpen(operation);
    try {
      return await body(this.#client.current ?? (await this.#client.get()));
    } catch (error) {
      throw this.failure(operation, error);
    }
  }

  /** What to throw for `error` from `operation`: the caller's own as it was, a driver's mapped. */
  failure(operation: string, error: unknown): unknown {
    if (error instanceof CallerFailed) return error.error;
    const { dialect, factory, misconfiguration } = this.#options;
    if (this.#client.closed) return outboxClosed(dialect, operation, factory);
    return this.#options.explain?.(operation, error) ?? outboxFailure(dialect, operation, error, misconfiguration);
  }

  /** Ends the connection the outbox opened itself; one the caller gave stays open. */
  close(): Promise<void> {
    return this.#client.close();
  }
}

/** How many times a transaction the server rolled back for a deadlock runs, in all. */
export const MAX_TRANSACTION_ATTEMPTS = 5;

/**
 * Runs `attempt` (one whole transaction of ours) again, after a short random pause, when it fails
 * with an error `isRetryable` recognises (a deadlock victim: the server rolled it all back), up to
 * `MAX_TRANSACTION_ATTEMPTS` times in all.
 */
export async function withRetries<T>(isRetryable: (error: unknown) => boolean, attempt: () => Promise<T>): Promise<T> {
  for (let round = 1; ; round++) {
    try {
      return await attempt();
    } catch (error) {
      if (round >= MAX_TRANSACTION_ATTEMPTS || !isRetryable(error)) throw error;
    }
    await pause(Math.floor(Math.random() * 10 * round) + 1);
  }
}

export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
