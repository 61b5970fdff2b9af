/** The counts of a run, and its rate over the last few seconds. */
import type { BackfillProgress } from './types.js';

/** The rate is taken over this much of the recent past, in ms: recent enough to follow a change of pace. */
const RATE_WINDOW_MS = 10_000;

export class ProgressMeter {
  readonly name: string;
  readonly total: number | undefined;
  done = 0;
  skipped = 0;
  failed = 0;
  retried = 0;
  inFlight = 0;
  readonly #startedAtMs: number;
  readonly #now: () => number;
  /** (time, settled) pairs, oldest first, spanning at most `RATE_WINDOW_MS`. */
  readonly #samples: { atMs: number; settled: number }[] = [];

  constructor(name: string, total: number | undefined, now: () => number) {
    this.name = name;
    this.total = total;
    this.#now = now;
    this.#startedAtMs = now();
    this.#samples.push({ atMs: this.#startedAtMs, settled: 0 });
  }

  get settled(): number {
    return this.done + this.skipped + this.failed;
  }

  get elapsedMs(): number {
    return this.#now() - this.#startedAtMs;
  }

  /**
   * The progress now. `final` takes the rate over the whole run; otherwise over the last
   * `RATE_WINDOW_MS`, and this call is one of the samples.
   */
  snapshot(waiting: number, final = false): BackfillProgress {
    const atMs = this.#now();
    const settled = this.settled;
    let since = this.#samples[0] ?? { atMs: this.#startedAtMs, settled: 0 };
    if (final) since = { atMs: this.#startedAtMs, settled: 0 };
    else {
      this.#samples.push({ atMs, settled });
      while (this.#samples.length > 2 && (this.#samples[1]?.atMs ?? atMs) <= atMs - RATE_WINDOW_MS) {
        this.#samples.shift();
      }
      since = this.#samples[0] ?? since;
    }
    const spanMs = atMs - since.atMs;
    const itemsPerSecond = spanMs > 0 ? ((settled - since.settled) * 1000) / spanMs : 0;
    const left = this.total === undefined ? undefined : Math.max(0, this.total - settled);
    return {
      name: this.name,
      done: this.done,
      skipped: this.skipped,
      failed: this.failed,
      retried: this.retried,
      inFlight: this.inFlight,
      waiting,
      settled,
      total: this.total,
      elapsedMs: atMs - this.#startedAtMs,
      itemsPerSecond,
      remainingMs: remainingMs(left, itemsPerSecond),
    };
  }
}

function remainingMs(left: number | undefined, itemsPerSecond: number): number | undefined {
  if (left === undefined) return undefined;
  if (left === 0) return 0;
  return itemsPerSecond > 0 ? Math.round((left / itemsPerSecond) * 1000) : undefined;
}
