/** One measured run of an async operation. */
export interface Measurement {
  /** Operations completed in the timed windows. */
  ops: number;
  /** Total length of the timed windows, in ms. */
  elapsedMs: number;
  /** Completed operations per second over the windows. */
  opsPerSec: number;
  /** Mean latency of one operation, in microseconds (at concurrency > 1, each call's own wait). */
  meanUs: number;
  /** Median latency of one operation, in microseconds: unlike the mean, barely moved by the rare call the OS preempted. */
  p50Us: number;
  /** 99th percentile latency of one operation, in microseconds. */
  p99Us: number;
  /** Operations that threw; their latency is not counted. */
  failures: number;
  /** The first error thrown, as text, when any operation failed. */
  firstError?: string;
}

export interface MeasureOptions {
  /** Operations in flight at once. Default 1: each call awaits the previous one. */
  concurrency?: number;
  /** How long each operation is timed in all, in ms. */
  durationMs: number;
  /** Untimed calls first, in ms, so the JIT and connections are warm. Default 10% of `durationMs`. */
  warmupMs?: number;
  /**
   * With several operations, the window is cut into this many slices and the operations take
   * turns, slice by slice, so that load from elsewhere on the machine falls on all of them alike
   * and their ratios stay fair. Default 1.
   */
  slices?: number;
  /** Each operation's timing stops after this many calls (bounds memory on very fast ones). Default 2,000,000. */
  maxOps?: number;
}

type Operation = (index: number) => Promise<unknown>;

/** Times one operation: `operation(i)` with i = 0, 1, 2... for `durationMs`, `concurrency` at a time. */
export async function measure(operation: Operation, options: MeasureOptions): Promise<Measurement> {
  const [only] = await measureTogether([operation], options);
  return only as Measurement;
}

/**
 * Times several operations in turns (see `slices`). Each operation's indexes run on from slice to
 * slice, and warm-up calls get indexes of their own (counted down from -1), so an operation that
 * needs a fresh key per call never reuses one.
 */
export async function measureTogether(operations: Operation[], options: MeasureOptions): Promise<Measurement[]> {
  const concurrency = options.concurrency ?? 1;
  const slices = Math.max(1, options.slices ?? 1);
  const warmupMs = options.warmupMs ?? Math.max(20, options.durationMs / 10);
  const timers = operations.map((operation) => new Timer(operation, options.maxOps ?? 2_000_000));
  for (const timer of timers) await timer.warm(warmupMs, concurrency);
  for (let slice = 0; slice < slices; slice++) {
    for (const timer of timers) await timer.run(options.durationMs / slices, concurrency);
  }
  return timers.map((timer) => timer.result());
}

class Timer {
  readonly #operation: Operation;
  readonly #latencies: Float64Array;
  #next = 0;
  #done = 0;
  #warmIndex = -1;
  #elapsedMs = 0;
  #failures = 0;
  #firstError: string | undefined;

  constructor(operation: Operation, maxOps: number) {
    this.#operation = operation;
    this.#latencies = new Float64Array(maxOps);
  }

  async warm(durationMs: number, concurrency: number): Promise<void> {
    const end = performance.now() + durationMs;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < end) await this.#operation(this.#warmIndex--).catch(() => {});
      }),
    );
  }

  async run(durationMs: number, concurrency: number): Promise<void> {
    const start = performance.now();
    const end = start + durationMs;
    const latencies = this.#latencies;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (this.#next < latencies.length) {
          const before = performance.now();
          if (before >= end) return;
          const index = this.#next++;
          try {
            await this.#operation(index);
            latencies[this.#done++] = performance.now() - before;
          } catch (error) {
            this.#failures += 1;
            this.#firstError ??= error instanceof Error ? error.message : String(error);
          }
        }
      }),
    );
    this.#elapsedMs += performance.now() - start;
  }

  result(): Measurement {
    const done = this.#done;
    const sample = this.#latencies.subarray(0, done).sort();
    let total = 0;
    for (const value of sample) total += value;
    return {
      ops: done,
      elapsedMs: this.#elapsedMs,
      opsPerSec: (done * 1000) / this.#elapsedMs,
      meanUs: done === 0 ? Number.NaN : (total / done) * 1000,
      p50Us: done === 0 ? Number.NaN : (sample[Math.ceil(done * 0.5) - 1] ?? Number.NaN) * 1000,
      p99Us: done === 0 ? Number.NaN : (sample[Math.ceil(done * 0.99) - 1] ?? Number.NaN) * 1000,
      failures: this.#failures,
      ...(this.#firstError === undefined ? {} : { firstError: this.#firstError }),
    };
  }
}
