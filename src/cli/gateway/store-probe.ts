import { callStore } from '../../core/deadlines.js';
import type { Store } from '../../core/store.js';

/** How long one probe's answer is reused, in ms: a flood of health checks asks the store at most once per period. */
export const DEFAULT_PROBE_CACHE_MS = 1000;
/** The longest a probe waits for the store, in ms (orchestrators' probes often give up after 1 s). */
export const DEFAULT_PROBE_TIMEOUT_MS = 1000;

/** How a `StoreProbe` asks and reports. */
export interface StoreProbeOptions {
  /** How long an answer is reused, in ms. Default 1,000. */
  cacheMs?: number;
  /** The longest a probe waits for the store, in ms. Default 1,000. */
  timeoutMs?: number;
  /**
   * Called with the driver's error when the store stops answering (once per outage, not per
   * probe): the detail is for the operator's log, never for the client.
   */
  onDown?: (error: unknown) => void;
  /** Called when the store answers again after `onDown`. */
  onUp?: () => void;
}

/**
 * Is the store answering? A `ping()` (or, for a store without one, a read) within a bound, its
 * answer kept for `cacheMs`; probes asked for while one is running share it.
 */
export class StoreProbe {
  readonly #store: Store;
  readonly #cacheMs: number;
  readonly #timeoutMs: number;
  readonly #onDown: (error: unknown) => void;
  readonly #onUp: () => void;
  #running: Promise<boolean> | undefined;
  #last: { up: boolean; atMs: number } | undefined;

  constructor(store: Store, options: StoreProbeOptions = {}) {
    this.#store = store;
    this.#cacheMs = options.cacheMs ?? DEFAULT_PROBE_CACHE_MS;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
    this.#onDown = options.onDown ?? (() => {});
    this.#onUp = options.onUp ?? (() => {});
  }

  /** True when the store answered the latest probe (at most `cacheMs` old). */
  check(): Promise<boolean> {
    const last = this.#last;
    if (last !== undefined && performance.now() - last.atMs < this.#cacheMs) return Promise.resolve(last.up);
    this.#running ??= this.#probe().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #probe(): Promise<boolean> {
    const store = this.#store;
    const wasUp = this.#last?.up ?? true;
    let up = true;
    try {
      await callStore(store.name, 'health probe', this.#timeoutMs, async () => {
        if (store.ping === undefined) await store.get('idem-health', Date.now());
        else await store.ping();
      });
    } catch (error) {
      up = false;
      if (wasUp) this.#onDown(error);
    }
    if (up && !wasUp) this.#onUp();
    this.#last = { up, atMs: performance.now() };
    return up;
  }
}
