import { type DueEntry, DueQueue } from './due-queue.js';
import { storeUnavailable } from './errors.js';

interface Pending extends DueEntry {
  reject: (error: unknown) => void;
  /** The store call, as `failure` names it. */
  operation: string;
}

/** The error a failed or timed-out call rejects with, from the call's `operation` and its `cause`. */
export type CallFailure = (operation: string, cause: unknown) => Error;

/**
 * Puts a time limit on promises with one shared timer (running only while calls are pending), instead of a timer and a
 * `Promise.race` per call: on the hot path a store call then costs one promise and a queue slot.
 * A limit is enforced up to one tick late (a quarter of the limit, at most 250 ms).
 */
export class Deadlines {
  readonly #limitMs: number;
  readonly #tickMs: number;
  readonly #failure: CallFailure;
  /** Every call has the same limit, so calls fall due in the order they started. */
  readonly #pending = new DueQueue<Pending>();
  #timer: NodeJS.Timeout | undefined;

  /** @param failure what a call that fails or times out (cause: `storeTimeout(limitMs)`) rejects with. */
  constructor(limitMs: number, failure: CallFailure) {
    this.#limitMs = limitMs;
    this.#failure = failure;
    this.#tickMs = Math.max(5, Math.min(250, Math.floor(limitMs / 4)));
  }

  /**
   * Settles as `work` does, or rejects once the limit has passed; either rejection goes through
   * the constructor's `failure` (the engine's `STORE_UNAVAILABLE`), so callers need no async layer
   * (nor a closure per call) of their own to translate it.
   */
  within<T>(work: Promise<T>, operation: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry: Pending = { dueMs: performance.now() + this.#limitMs, settled: false, reject, operation };
      this.#pending.push(entry);
      if (this.#timer === undefined) {
        // Not unref'd: a call still waiting for its store keeps the process alive until it times out.
        this.#timer = setInterval(() => this.#sweep(), this.#tickMs);
      }
      // Promise.resolve: a store that answers a plain value or a thenable is waited on all the same.
      Promise.resolve(work).then(
        (value) => {
          this.#pending.settle(entry);
          resolve(value);
        },
        (error: unknown) => {
          this.#pending.settle(entry);
          reject(this.#failure(operation, error));
        },
      );
    });
  }

  #sweep(): void {
    const nowMs = performance.now();
    for (let entry = this.#pending.takeDue(nowMs); entry !== undefined; entry = this.#pending.takeDue(nowMs)) {
      entry.reject(this.#failure(entry.operation, storeTimeout(this.#limitMs)));
    }
    if (this.#pending.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}

/** The errors `storeTimeout` made, so a timeout can be told from a failure without reading its message. */
const timeouts = new WeakSet<object>();

/** Why a store call timed out, as the engine and `callStore` report it. */
export function storeTimeout(limitMs: number): Error {
  const error = new Error(`no answer within ${limitMs} ms (storeTimeoutMs)`);
  timeouts.add(error);
  return error;
}

/** True when `error` is a store call's timeout (made by `storeTimeout`). */
export function isStoreTimeout(error: unknown): boolean {
  return typeof error === 'object' && error !== null && timeouts.has(error);
}

/**
 * One store call made outside the engine (the gateway's health check): `run()` within
 * `limitMs`, any failure or the timeout reported as `STORE_UNAVAILABLE`, exactly as the engine
 * reports its own calls. One timer for the one call: no shared `Deadlines` needed.
 */
export async function callStore<T>(
  storeName: string,
  operation: string,
  limitMs: number,
  run: () => Promise<T>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(storeTimeout(limitMs)), limitMs);
  });
  try {
    return await Promise.race([run(), timeout]);
  } catch (error) {
    throw storeUnavailable(storeName, operation, error);
  } finally {
    clearTimeout(timer);
  }
}
