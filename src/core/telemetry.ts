import { performance } from 'node:perf_hooks';
import type { Decision } from './engine.js';
import { type IdempotencyError, isIdempotencyError } from './errors.js';
import type { UnprotectedReason } from './store-fault-policy.js';

/** What a span or a metric point is tagged with: flat names and plain values, never a key or a result. */
export type TelemetryAttributes = Record<string, string | number | boolean>;

/** The part of an OpenTelemetry `Span` Idem uses. */
export interface TelemetrySpan {
  /** Tags the span. */
  setAttribute(key: string, value: string | number | boolean): unknown;
  /** Marks the span failed: `code` 2 is OpenTelemetry's `SpanStatusCode.ERROR`. */
  setStatus(status: { code: number; message?: string }): unknown;
  /** Ends the span; its duration is from `startSpan` to now. */
  end(): void;
}

/** The part of an OpenTelemetry `Tracer` Idem uses: `trace.getTracer('idem')` fits. */
export interface TelemetryTracer {
  /** Starts a span, a child of the active one (OpenTelemetry's default when no context is given). */
  startSpan(name: string, options?: { attributes?: TelemetryAttributes }): TelemetrySpan;
}

/** The part of an OpenTelemetry `Counter` Idem uses. */
export interface TelemetryCounter {
  /** Adds `value` to the count of the series `attributes` names. */
  add(value: number, attributes?: TelemetryAttributes): void;
}

/** The part of an OpenTelemetry `Histogram` Idem uses. */
export interface TelemetryHistogram {
  /** Records one measurement (ms for Idem's only histogram). */
  record(value: number, attributes?: TelemetryAttributes): void;
}

/** The part of an OpenTelemetry `Meter` Idem uses: `metrics.getMeter('idem')` fits. */
export interface TelemetryMeter {
  /** Makes a counter; Idem makes its counters once, when the engine is made. */
  createCounter(name: string, options?: { description?: string; unit?: string }): TelemetryCounter;
  /** Makes a histogram; Idem makes it once, when the engine is made. */
  createHistogram(name: string, options?: { description?: string; unit?: string }): TelemetryHistogram;
}

/**
 * Where the engine reports spans and metrics. Typed by shape, so Idem never imports
 * `@opentelemetry/api`: pass its tracer and meter, or anything with the same methods.
 * @example
 * ```ts
 * new Engine({ store, telemetry: { tracer: trace.getTracer('idem'), meter: metrics.getMeter('idem') } });
 * ```
 */
export interface TelemetryOptions {
  /** Receives the `idem.claim`, `idem.complete` and `idem.release` spans. Default: no spans. */
  tracer?: TelemetryTracer;
  /** Receives the `idem.*` counters and the `idem.store.duration` histogram. Default: no metrics. */
  meter?: TelemetryMeter;
}

/** How a claim was decided: the `kind` of the engine's `Decision`. */
export type ClaimOutcome = Decision['kind'];

/**
 * What the engine tells `onEvent`, in the order it happens. `store` is the store's `name`; no
 * event carries a key or a result.
 */
export type IdemEvent =
  | {
      type: 'claim';
      store: string;
      outcome: ClaimOutcome;
      /** How many times the key was claimed, this claim included (`run` only; above 1: a lease that ran out was taken over). */
      attempts?: number;
      /** From `begin` to its answer, waiting included, in ms. */
      durationMs: number;
    }
  | {
      type: 'complete';
      store: string /** False when the outcome was stored as "too large". */;
      whole: boolean;
      durationMs: number;
    }
  | { type: 'release'; store: string; durationMs: number }
  | { type: 'lease_lost'; store: string }
  | {
      /** The store was down for a claim and the face's `onStoreUnavailable: 'run-unprotected'` ran the work without a record. */
      type: 'unprotected_run';
      store: string;
      /** The face that ran it: `function`, `http`, `gateway`. */
      face: string;
      /** `store_error`: the store failed; `timeout`: it gave no answer within `storeTimeoutMs`. */
      reason: UnprotectedReason;
    }
  | {
      type: 'store_error';
      store: string /** `claim`, `get`, `complete`, `release`, `extend`. */;
      operation: string;
      error: IdempotencyError;
    };

/** How the work under a lease ended, on its `idem.run` span. */
export type RunEnd = 'completed' | 'released' | 'lost';

/** The `idem.run` span of one lease: the work, from the claim to `complete` or `release`. @internal */
export interface RunSpan {
  end(how: RunEnd): void;
}

/** Span status code for a failure (OpenTelemetry's `SpanStatusCode.ERROR`). */
const SPAN_ERROR = 2;

type Counters = Record<
  'runs' | 'replays' | 'conflicts' | 'mismatches' | 'takeovers' | 'losses' | 'errors' | 'unprotected',
  TelemetryCounter
>;

const COUNTERS: Record<keyof Counters, [name: string, description: string]> = {
  runs: ['idem.runs', 'Claims that ran the work'],
  replays: ['idem.replays', 'Claims answered with a stored outcome'],
  conflicts: ['idem.conflicts', 'Claims refused because the key was in progress elsewhere'],
  mismatches: ['idem.mismatches', 'Claims refused because the key was used with other input'],
  takeovers: ['idem.lease.takeovers', 'Runs that took over a key whose lease ran out (attempts > 1)'],
  losses: ['idem.lease.losses', 'Leases lost to another worker (LEASE_LOST)'],
  errors: ['idem.store.errors', 'Store calls that failed or timed out (STORE_UNAVAILABLE)'],
  unprotected: [
    'idem.unprotected_runs',
    "Work run without a record while the store was down (onStoreUnavailable: 'run-unprotected')",
  ],
};

const OUTCOME_COUNTER: Record<ClaimOutcome, keyof Counters> = {
  run: 'runs',
  replay: 'replays',
  in_progress: 'conflicts',
  mismatch: 'mismatches',
};

/**
 * The engine's reporting, made only when telemetry or `onEvent` is configured: with neither, the
 * engine holds `undefined` and its calls take their usual path without a single extra object.
 * @internal
 */
export class Telemetry {
  readonly #store: string;
  readonly #tracer: TelemetryTracer | undefined;
  readonly #counters: Counters | undefined;
  readonly #latency: TelemetryHistogram | undefined;
  readonly #waits: TelemetryHistogram | undefined;
  readonly #onEvent: ((event: IdemEvent) => void) | undefined;
  readonly #storeAttributes: TelemetryAttributes;

  /** The reporting `options` ask for, or `undefined` when they ask for none. */
  static of(
    storeName: string,
    telemetry: TelemetryOptions | undefined,
    onEvent: ((event: IdemEvent) => void) | undefined,
  ): Telemetry | undefined {
    if (telemetry?.tracer === undefined && telemetry?.meter === undefined && onEvent === undefined) return undefined;
    return new Telemetry(storeName, telemetry ?? {}, onEvent);
  }

  private constructor(storeName: string, options: TelemetryOptions, onEvent: ((event: IdemEvent) => void) | undefined) {
    this.#store = storeName;
    this.#tracer = options.tracer;
    this.#onEvent = onEvent;
    this.#storeAttributes = { 'idem.store': storeName };
    const meter = options.meter;
    if (meter !== undefined) {
      const counters: Partial<Counters> = {};
      for (const [field, [name, description]] of Object.entries(COUNTERS)) {
        counters[field as keyof Counters] = meter.createCounter(name, { description, unit: '{call}' });
      }
      this.#counters = counters as Counters;
      this.#latency = meter.createHistogram('idem.store.duration', {
        description: 'Time a store call took, per operation',
        unit: 'ms',
      });
      this.#waits = meter.createHistogram('idem.wait.duration', {
        description: 'Time a caller waited for a key in progress elsewhere, per final outcome',
        unit: 'ms',
      });
    }
  }

  /** Runs `begin` in an `idem.claim` span and reports its decision. */
  async claim(begin: () => Promise<Decision>): Promise<Decision> {
    const startMs = performance.now();
    const span = this.#tracer?.startSpan('idem.claim', { attributes: this.#storeAttributes });
    let decision: Decision;
    try {
      decision = await begin();
    } catch (error) {
      fail(span, error);
      throw error;
    }
    const attempts = decision.kind === 'run' ? decision.lease.attempts : undefined;
    span?.setAttribute('idem.outcome', decision.kind);
    if (attempts !== undefined) span?.setAttribute('idem.attempts', attempts);
    span?.end();
    if (this.#counters !== undefined) {
      this.#counters[OUTCOME_COUNTER[decision.kind]].add(1, this.#storeAttributes);
      if (attempts !== undefined && attempts > 1) this.#counters.takeovers.add(1, this.#storeAttributes);
    }
    const durationMs = performance.now() - startMs;
    this.#emit(
      attempts === undefined
        ? { type: 'claim', store: this.#store, outcome: decision.kind, durationMs }
        : { type: 'claim', store: this.#store, outcome: decision.kind, attempts, durationMs },
    );
    return decision;
  }

  /** Runs a lease's `complete` in an `idem.complete` span. */
  async complete(run: () => Promise<boolean>): Promise<boolean> {
    const startMs = performance.now();
    const whole = await this.#spanned('idem.complete', run);
    this.#emit({ type: 'complete', store: this.#store, whole, durationMs: performance.now() - startMs });
    return whole;
  }

  /** Runs a lease's `release` in an `idem.release` span. */
  async release(run: () => Promise<unknown>): Promise<void> {
    const startMs = performance.now();
    await this.#spanned('idem.release', run);
    this.#emit({ type: 'release', store: this.#store, durationMs: performance.now() - startMs });
  }

  /** Times one store call; a failure (already a `STORE_UNAVAILABLE`) is counted and reported. */
  async storeCall<T>(operation: string, run: () => Promise<T>): Promise<T> {
    const startMs = performance.now();
    try {
      return await run();
    } catch (error) {
      this.#counters?.errors.add(1, { 'idem.store': this.#store, 'idem.operation': operation });
      if (isIdempotencyError(error)) this.#emit({ type: 'store_error', store: this.#store, operation, error });
      throw error;
    } finally {
      this.#latency?.record(performance.now() - startMs, { 'idem.store': this.#store, 'idem.operation': operation });
    }
  }

  /**
   * Starts the `idem.run` span of a lease just granted (`idem.attempts` set), which the lease ends
   * with `idem.run_end`: `completed`, `released` or `lost`. `undefined` without a tracer.
   */
  startRun(attempts: number): RunSpan | undefined {
    const span = this.#tracer?.startSpan('idem.run', {
      attributes: { ...this.#storeAttributes, 'idem.attempts': attempts },
    });
    if (span === undefined) return undefined;
    return {
      end(how) {
        span.setAttribute('idem.run_end', how);
        if (how === 'lost') span.setStatus({ code: SPAN_ERROR, message: 'LEASE_LOST' });
        span.end();
      },
    };
  }

  /** Opens a stored outcome for a replay in an `idem.replay` span (decoding, and decrypting when sealed). */
  replay<T>(open: () => T): T {
    const span = this.#tracer?.startSpan('idem.replay', { attributes: this.#storeAttributes });
    try {
      const outcome = open();
      span?.end();
      return outcome;
    } catch (error) {
      fail(span, error);
      throw error;
    }
  }

  /** Records how long `begin` waited for a key in progress elsewhere, by the decision it ended with. */
  waited(durationMs: number, outcome: ClaimOutcome): void {
    this.#waits?.record(durationMs, { 'idem.store': this.#store, 'idem.outcome': outcome });
  }

  /** Counts a lease lost to another worker; the lease calls it once. */
  leaseLost(): void {
    this.#counters?.losses.add(1, this.#storeAttributes);
    this.#emit({ type: 'lease_lost', store: this.#store });
  }

  /** Counts work a face ran without a record because the store was down (`run-unprotected`). */
  unprotectedRun(face: string, reason: UnprotectedReason): void {
    this.#counters?.unprotected.add(1, { 'idem.store': this.#store, 'idem.face': face, 'idem.reason': reason });
    this.#emit({ type: 'unprotected_run', store: this.#store, face, reason });
  }

  async #spanned<T>(name: string, run: () => Promise<T>): Promise<T> {
    const span = this.#tracer?.startSpan(name, { attributes: this.#storeAttributes });
    try {
      const value = await run();
      span?.end();
      return value;
    } catch (error) {
      fail(span, error);
      throw error;
    }
  }

  #emit(event: IdemEvent): void {
    if (this.#onEvent === undefined) return;
    try {
      this.#onEvent(event);
    } catch {
      // A reporting hook must not change what the call does: its failure is its own to log.
    }
  }
}

/** Marks `span` failed with the error's code (an `IdempotencyError`'s) and ends it. */
function fail(span: TelemetrySpan | undefined, error: unknown): void {
  if (span === undefined) return;
  const code = isIdempotencyError(error) ? error.code : 'ERROR';
  span.setAttribute('idem.error_code', code);
  span.setStatus({ code: SPAN_ERROR, message: code });
  span.end();
}
