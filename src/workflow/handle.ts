import type { Engine } from '../core/engine.js';
import { ErrorCode, IdempotencyError } from '../core/errors.js';
import type { JournalStore } from '../core/journal.js';
import { OutcomeKind } from '../core/outcome.js';
import type { IdempotencyRecord } from '../core/store.js';
import { type ErrorRevivalOptions, reviveError, type StoredError } from '../core/stored-error.js';
import { defaultSerializer } from '../core/value-codec.js';
import type { EntryCodec } from './entries.js';
import type { StoredOutcome } from './executor.js';
import { runKeyOf } from './keys.js';

export interface ResultOptions {
  /** Longest wait in ms; then `IN_PROGRESS` is thrown (the run goes on). Default: no limit. */
  timeoutMs?: number;
}

/** What a handle needs from the workflows it belongs to. @internal */
export interface HandleHost {
  readonly engine: Engine;
  readonly store: JournalStore;
  readonly entryCodec: EntryCodec;
  readonly revival: ErrorRevivalOptions;
  /** The run's promise when this process runs it, so `result` need not poll. */
  localRun(key: string): Promise<unknown> | undefined;
}

/**
 * How long `result` waits on a run of this process before it reads the record again, in ms: the
 * run may have lost its lease to another process, which completes the record instead.
 */
const LOCAL_CHECK_MS = 1000;

/** A run, from any process: its id, and its result when it has one. */
export class WorkflowHandle<O> {
  readonly workflowId: string;
  readonly #host: HandleHost;
  readonly #key: string;

  /** @internal */
  constructor(host: HandleHost, workflowId: string) {
    this.#host = host;
    this.workflowId = workflowId;
    this.#key = runKeyOf(workflowId);
  }

  /**
   * The run's result, once it has one: its return value; or throws `WORKFLOW_FAILED` (its `cause`
   * the error the run gave up with), `WORKFLOW_CANCELLED`, `WORKFLOW_DEAD` or
   * `WORKFLOW_NONDETERMINISM` (parked: resume it, then ask again), `WORKFLOW_NOT_FOUND`.
   * Waits while the run goes on, here or in any other process (polling the store).
   */
  async result(options: ResultOptions = {}): Promise<O> {
    const { engine } = this.#host;
    const deadline = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : engine.now() + options.timeoutMs;
    // A run this process is executing has no outcome yet: reading its record now would only find
    // it in progress, so wait for it first (`run()` would pay a store read per call for nothing).
    const running = this.#host.localRun(this.#key);
    if (running !== undefined && deadline > engine.now()) {
      await pauseFor(Math.min(LOCAL_CHECK_MS, deadline - engine.now()), running);
    }
    let pauseMs = 5;
    for (;;) {
      const record = await engine.call('get', () => this.#host.store.get(this.#key, engine.now()));
      if (record === null) throw notFound(this.workflowId);
      if (record.state === 'completed') return this.#outcome(record);
      await this.#throwIfParked(record);
      const nowMs = engine.now();
      if (nowMs >= deadline) {
        throw new IdempotencyError(
          ErrorCode.IN_PROGRESS,
          `[idem] workflow ${this.workflowId} has not finished yet; ask for its result again later.`,
          { key: this.#key, retryAfterMs: 1000 },
        );
      }
      // A run of this process wakes us when it ends; a run elsewhere is polled.
      const local = this.#host.localRun(this.#key);
      await pauseFor(Math.min(local === undefined ? pauseMs : LOCAL_CHECK_MS, deadline - nowMs), local);
      pauseMs = Math.min(pauseMs * 2, 500);
    }
  }

  #outcome(record: IdempotencyRecord): O {
    const { engine, revival } = this.#host;
    const outcome = engine.codec.decode(record.result as Uint8Array, this.#key);
    if (outcome.kind === OutcomeKind.tooLarge) {
      throw new IdempotencyError(
        ErrorCode.RESULT_TOO_LARGE,
        `[idem] workflow ${this.workflowId} completed, but its result (${new TextDecoder().decode(outcome.payload)} bytes) was over maxResultBytes and was not kept.`,
      );
    }
    const stored = defaultSerializer.decode(outcome.payload) as StoredOutcome;
    if (stored.ok) return stored.value as O;
    const cause = reviveError(stored.error, revival);
    throw new IdempotencyError(
      stored.cancelled ? ErrorCode.WORKFLOW_CANCELLED : ErrorCode.WORKFLOW_FAILED,
      stored.cancelled
        ? `[idem] workflow ${this.workflowId} was cancelled (${stored.error.message.replace(/^\[idem\] /, '')}); its undos ran.`
        : `[idem] workflow ${this.workflowId} failed: ${stored.error.message}`,
      { cause, key: this.#key },
    );
  }

  /** A run parked for an operator (its lease held far ahead) throws what parked it. */
  async #throwIfParked(record: IdempotencyRecord): Promise<void> {
    const { engine, store, entryCodec } = this.#host;
    if (record.leaseExpiresAtMs <= engine.now() + engine.leaseMs) return;
    const entries = await engine.call('entries', () => store.entries(this.#key));
    const last = entries.at(-1);
    if (last === undefined) return;
    const { entry } = entryCodec.decode(this.#key, last);
    if (entry.t !== 'dead' && entry.t !== 'blocked') return;
    const stored = entry.error as StoredError;
    throw new IdempotencyError(
      entry.t === 'dead' ? ErrorCode.WORKFLOW_DEAD : ErrorCode.WORKFLOW_NONDETERMINISM,
      `[idem] workflow ${this.workflowId} is parked: ${stored.message.replace(/^\[idem\] /, '')}`,
      { key: this.#key },
    );
  }
}

/** Waits `ms`, or less when `local` (a run of this process) ends first, however it ends. */
async function pauseFor(ms: number, local: Promise<unknown> | undefined): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const pause = new Promise((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  await Promise.race(local === undefined ? [pause] : [pause, local.catch(() => undefined)]);
  clearTimeout(timer);
}

export function notFound(id: string): IdempotencyError {
  return new IdempotencyError(
    ErrorCode.WORKFLOW_NOT_FOUND,
    `[idem] no workflow run with id ${JSON.stringify(id)} (never started, or its record expired after the retention).`,
  );
}
