/**
 * How an in-progress lease is kept within the Lambda invocation that holds it: the wrapper runs
 * each invocation with its deadline (now + `context.getRemainingTimeInMillis()`), and the store the
 * engine sees ends every lease it writes (the claim's and each heartbeat's) by that deadline.
 *
 * Why: Lambda stops a timed-out invocation without running any of its code, so nothing releases
 * its key. Had its lease run past the deadline, the retry Lambda sends (or SQS redelivers) would
 * find the key in progress and fail too, until the lease ran out; ended with the invocation, the
 * retry takes the key over as soon as it arrives.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ClaimInput, ExtendInput, Store } from '../core/store.js';

/** The deadline of the invocation running now (ms since epoch), through its async calls and timers. */
export class InvocationDeadline {
  readonly #current = new AsyncLocalStorage<number>();

  /** Runs `work` with `deadlineMs` as the deadline of every lease it writes. */
  run<T>(deadlineMs: number, work: () => Promise<T>): Promise<T> {
    return this.#current.run(deadlineMs, work);
  }

  /** `leaseExpiresAtMs`, or the current invocation's deadline when that comes first. */
  bound(leaseExpiresAtMs: number): number {
    const deadlineMs = this.#current.getStore();
    return deadlineMs === undefined ? leaseExpiresAtMs : Math.min(leaseExpiresAtMs, deadlineMs);
  }

  /**
   * `store` with every lease it is asked to write (by `claim` and `extend`) ended by the current
   * invocation's deadline; every other member is the store's own. A Proxy rather than a class
   * that lists the contract's members, so whatever the store has (`ping`, `maxResultBytes`, the
   * operator's calls) passes through as it is.
   */
  boundStore(store: Store): Store {
    const claim = (input: ClaimInput) =>
      store.claim({ ...input, leaseExpiresAtMs: this.bound(input.leaseExpiresAtMs) });
    const extend = (input: ExtendInput) =>
      store.extend({ ...input, leaseExpiresAtMs: this.bound(input.leaseExpiresAtMs) });
    return new Proxy(store, {
      get(target, property) {
        if (property === 'claim') return claim;
        if (property === 'extend') return extend;
        const value: unknown = Reflect.get(target, property, target);
        // Methods run on the store itself: its #private fields are not on the proxy.
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }
}
