/**
 * The context a workflow's body runs with: each `step`, `transaction` and `sleep` takes the next
 * position, gives back what the journal recorded there, or runs and records it. Every append is
 * fenced by the run's lease: a holder that lost the run to another worker stops at its next append.
 */
import type { Engine, Lease } from '../core/engine.js';
import { ErrorCode, IdempotencyError } from '../core/errors.js';
import type { JournalStore } from '../core/journal.js';
import { OutcomeKind } from '../core/outcome.js';
import { describeError, reviveError, type StoredError } from '../core/stored-error.js';
import { defaultSerializer } from '../core/value-codec.js';
import type { Entry, EntryCodec, StartEntry, StepEntry } from './entries.js';
import { deriveKey, stepContextOf } from './keys.js';
import { nondeterminism, type OpKind, type RecordedOp, type Replay } from './replay.js';
import { attemptOnce, pauseBefore, retryPolicy, waitFor } from './retry.js';
import { encodeValue, leaseLost, Suspend, unrecordable } from './run-control.js';
import type { StepDatabase } from './sql/step-database.js';
import type { ChildDefinition, StepContext, StepOptions, WorkflowContext } from './types.js';
import { runUndos, type Undo } from './undos.js';

export interface RunParts {
  engine: Engine;
  store: JournalStore;
  codec: EntryCodec;
  lease: Lease;
  start: StartEntry;
  replay: Replay;
  /** Sleeps up to this long (ms) hold the lease and wait in process; longer ones suspend the run. */
  inlineSleepMs: number;
  /** A run waiting for a signal looks again after this long (ms), in case a wake-up was missed. */
  signalPollMs: number;
  /** The value of signal `name` sent to this run, or `undefined` when none was sent. */
  readSignal: (name: string) => Promise<{ value: unknown } | undefined>;
}

export class RunContext implements WorkflowContext {
  readonly workflowId: string;
  readonly runId: string;
  readonly #parts: RunParts;
  readonly #undos: Undo[] = [];
  /** Journal writes in flight (the copies of transaction steps' records). */
  readonly #pending = new Set<Promise<void>>();
  #nextOp = 0;
  /** Set once the run must stop (lease lost, code mismatch, suspended, cancelled): every later call throws it. */
  #halt: unknown;
  #cancelled: IdempotencyError | undefined;

  constructor(parts: RunParts) {
    this.#parts = parts;
    this.workflowId = parts.start.id;
    this.runId = parts.start.runId;
  }

  /** Positions the body asked for so far. */
  get opsVisited(): number {
    return this.#nextOp;
  }

  /** What stopped the run, if something did (kept even when the body caught it). */
  get halted(): unknown {
    return this.#halt;
  }

  /** Asks the run to stop at its next operation that would run (recorded ones still replay). */
  cancel(reason: string): void {
    this.#cancelled ??= new IdempotencyError(
      ErrorCode.WORKFLOW_CANCELLED,
      `[idem] workflow ${this.workflowId} was cancelled: ${reason}`,
    );
  }

  key(name: string): string {
    return deriveKey(this.runId, `key:${name}`);
  }

  async step<T>(name: string, fn: (step: StepContext) => Promise<T> | T, options: StepOptions<T> = {}): Promise<T> {
    const op = this.#enter(name);
    const recorded = this.#at(op, name, 'step');
    if (recorded?.result !== undefined) return this.#settled<T>(recorded.result, op, options);
    this.#stopIfCancelled();
    const attempt = (recorded?.attempts.length ?? 0) + 1;
    const reconcile = options.reconcile;
    if (reconcile !== undefined && recorded?.intent === true && typeof reconcile === 'function') {
      const found = await reconcile(this.#stepContext(op, name, attempt, this.#parts.lease.signal));
      if (found.done) return this.#finish(op, name, 'step', found.value, attempt, this.#now(), options);
    } else if (reconcile !== undefined && recorded?.intent !== true) {
      await this.append({ t: 'intent', op, name });
    }
    const lastAttempt = recorded?.attempts.at(-1);
    if (lastAttempt !== undefined)
      await waitFor(lastAttempt.retryAtMs, this.#parts.engine.now, this.#parts.lease.signal);
    return this.#attempts(op, name, 'step', attempt, options, (signal, n) =>
      attemptOnce((s) => fn(this.#stepContext(op, name, n, s)), options.timeoutMs, signal, name),
    );
  }

  async transaction<T, Tx>(
    name: string,
    db: StepDatabase<Tx>,
    fn: (tx: Tx) => Promise<T> | T,
    options: Pick<StepOptions<T>, 'retries' | 'isFinal' | 'compensate'> = {},
  ): Promise<T> {
    const op = this.#enter(name);
    const recorded = this.#at(op, name, 'transaction');
    if (recorded?.result !== undefined) return this.#settled<T>(recorded.result, op, options);
    this.#stopIfCancelled();
    const attempt = (recorded?.attempts.length ?? 0) + 1;
    const sealAs = `${this.#parts.lease.key}#tx${op}`;
    return this.#attempts(op, name, 'transaction', attempt, options, async () => {
      const { data } = await db.runOnce({ runId: this.runId, stepIndex: op, name }, async (tx) => {
        const value = await fn(tx);
        return this.#parts.engine.codec.encode({ kind: OutcomeKind.value, payload: encodeValue(name, value) }, sealAs);
      });
      return defaultSerializer.decode(this.#parts.engine.codec.decode(data, sealAs).payload) as T;
    });
  }

  sleep(ms: number, name = 'sleep'): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new IdempotencyError(ErrorCode.INVALID_OPTIONS, `[idem] sleep(${ms}): give a duration of 0 ms or more.`);
    }
    return this.#sleep(name, () => this.#now() + ms);
  }

  sleepUntil(date: Date | number, name = 'sleep'): Promise<void> {
    const at = typeof date === 'number' ? date : date.getTime();
    if (!Number.isFinite(at)) {
      throw new IdempotencyError(ErrorCode.INVALID_OPTIONS, '[idem] sleepUntil: give a valid Date or ms since epoch.');
    }
    return this.#sleep(name, () => at);
  }

  async waitForSignal<T>(name: string, options: { timeoutMs?: number } = {}): Promise<T> {
    const op = this.#enter(name);
    const recorded = this.#at(op, name, 'signal');
    if (recorded?.result !== undefined) return this.#settled<T>(recorded.result, op, {});
    this.#stopIfCancelled();
    const startedAtMs = this.#now();
    const sent = await this.#parts.readSignal(name);
    if (sent !== undefined) return this.#finish(op, name, 'signal', sent.value as T, 1, startedAtMs, {});
    const { timeoutMs } = options;
    if (timeoutMs !== undefined && !(timeoutMs >= 0)) {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] waitForSignal("${name}"): timeoutMs must be 0 or more, got ${timeoutMs}.`,
      );
    }
    const untilMs =
      recorded?.waitUntilMs !== undefined
        ? recorded.waitUntilMs
        : timeoutMs === undefined
          ? null
          : startedAtMs + timeoutMs;
    if (untilMs !== null && startedAtMs >= untilMs) {
      const error = new IdempotencyError(
        ErrorCode.STEP_TIMEOUT,
        `[idem] no signal "${name}" came for workflow ${this.workflowId} before its wait ended.`,
      );
      const failed: StepEntry = {
        t: 'step',
        op,
        name,
        kind: 'signal',
        ok: false,
        error: describeError(error),
        attempts: 1,
        startedAtMs,
        endedAtMs: startedAtMs,
      };
      await this.append(failed);
      throw error;
    }
    const wakeAtMs = Math.min(untilMs ?? Number.POSITIVE_INFINITY, startedAtMs + this.#parts.signalPollMs);
    await this.append({ t: 'wait', op, name, untilMs, wakeAtMs });
    this.#stop(new Suspend(wakeAtMs, async () => (await this.#parts.readSignal(name)) !== undefined));
  }

  async child<I, O>(definition: ChildDefinition<I, O>, childId: string, input: I): Promise<O> {
    const parent = this.workflowId;
    return this.step(
      `child:${definition.name}:${childId}`,
      async () => {
        const handle = await definition.start(childId, input, { parent });
        return handle.result();
      },
      // The child has its own retries and its own record: starting it again only attaches to it.
      { retries: { maxAttempts: 1 } },
    );
  }

  /** Checks the body visited every recorded operation: a removed step is a mismatch, not a silent skip. */
  checkNothingSkipped(): void {
    const left = this.#parts.replay.unvisited(this.#nextOp);
    if (left !== undefined) {
      this.#stop(nondeterminism(`the journal recorded ${left.kind} "${left.name}" but the code finished without it`));
    }
  }

  /** Runs the undos of finished steps, last first, each once: a recorded undo is not run again. */
  compensate(): Promise<void> {
    const { replay, engine, lease } = this.#parts;
    return runUndos(this.#undos, {
      undone: (undo) => replay.at(undo.op, undo.name, undo.kind)?.undone === true,
      record: (entry) => this.append(entry),
      now: engine.now,
      signal: lease.signal,
    });
  }

  /** Waits for the journal writes still in flight; what stopped one is in `halted`. */
  async settle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending);
  }

  #inBackground(write: Promise<void>): void {
    const pending = write.then(
      () => {
        this.#pending.delete(pending);
      },
      (error: unknown) => {
        this.#pending.delete(pending);
        this.#halt ??= error;
      },
    );
    this.#pending.add(pending);
  }

  /** Appends `entry` at the next position, under the lease; a refused append means the run was taken over. */
  async append(entry: Entry, stepName?: string): Promise<void> {
    const { engine, store, codec, lease, replay } = this.#parts;
    let data: Uint8Array;
    try {
      data = codec.encode(lease.key, replay.nextSeq, entry);
    } catch (cause) {
      // Only a step's value can fail to encode: the rest of an entry is plain data of our own.
      throw unrecordable(stepName ?? entry.t, cause);
    }
    const seq = replay.nextSeq++;
    let appended: boolean;
    try {
      appended = await engine.call('append', () =>
        store.append({ key: lease.key, token: lease.token, seq, data, nowMs: engine.now() }),
      );
    } catch (error) {
      // The journal cannot be written: stop as a crash would, and let recovery resume the run.
      this.#stop(error);
    }
    if (!appended) this.#stop(leaseLost(lease.key));
  }

  #enter(name: string): number {
    if (this.#halt !== undefined) throw this.#halt;
    if (typeof name !== 'string' || name === '') {
      throw new IdempotencyError(ErrorCode.INVALID_OPTIONS, '[idem] a step needs a non-empty name.');
    }
    return this.#nextOp++;
  }

  #at(op: number, name: string, kind: OpKind): RecordedOp | undefined {
    try {
      return this.#parts.replay.at(op, name, kind);
    } catch (error) {
      this.#stop(error);
    }
  }

  #stop(error: unknown): never {
    this.#halt ??= error;
    throw this.#halt;
  }

  #stopIfCancelled(): void {
    if (this.#cancelled !== undefined) this.#stop(this.#cancelled);
  }

  #now(): number {
    return this.#parts.engine.now();
  }

  #stepContext(op: number, name: string, attempt: number, signal: AbortSignal): StepContext {
    return stepContextOf(this.runId, this.workflowId, `${op}:${name}`, attempt, signal);
  }

  /** A recorded result: its value (registering its undo again), or its error thrown again. */
  #settled<T>(result: StepEntry, op: number, options: Pick<StepOptions<T>, 'compensate'>): T {
    if (!result.ok) throw reviveError(result.error as StoredError, {});
    const value = result.value as T;
    this.#register(op, result.name, result.kind, value, options);
    return value;
  }

  async #attempts<T>(
    op: number,
    name: string,
    kind: 'step' | 'transaction',
    first: number,
    options: Pick<StepOptions<T>, 'retries' | 'isFinal' | 'compensate'>,
    run: (signal: AbortSignal, attempt: number) => Promise<T>,
  ): Promise<T> {
    const policy = retryPolicy(options.retries);
    const { lease, engine } = this.#parts;
    for (let attempt = first; ; attempt++) {
      const startedAtMs = this.#now();
      let value: T;
      try {
        value = await run(lease.signal, attempt);
      } catch (error) {
        if (lease.signal.aborted) this.#stop(lease.signal.reason);
        if (attempt >= policy.maxAttempts || options.isFinal?.(error) === true) {
          const failed: StepEntry = {
            t: 'step',
            op,
            name,
            kind,
            ok: false,
            error: describeError(error),
            attempts: attempt,
            startedAtMs,
            endedAtMs: this.#now(),
          };
          await this.append(failed);
          throw error;
        }
        const retryAtMs = this.#now() + pauseBefore(attempt, policy);
        await this.append({ t: 'attempt', op, name, attempt, error: describeError(error), retryAtMs });
        await waitFor(retryAtMs, engine.now, lease.signal);
        continue;
      }
      return this.#finish(op, name, kind, value, attempt, startedAtMs, options);
    }
  }

  async #finish<T>(
    op: number,
    name: string,
    kind: 'step' | 'transaction' | 'signal',
    value: T,
    attempts: number,
    startedAtMs: number,
    options: Pick<StepOptions<T>, 'compensate'>,
  ): Promise<T> {
    const entry: StepEntry = {
      t: 'step',
      op,
      name,
      kind,
      ok: true,
      value,
      attempts,
      startedAtMs,
      endedAtMs: this.#now(),
    };
    if (kind === 'transaction') {
      // The step's record committed with its writes, in the user's database: the journal entry
      // is only its copy for replays and operators, so it is written while the body goes on. A
      // crash before it lands loses nothing (a re-run finds the row), and a refused append stops
      // the run at its next operation. `settle` waits for it before the run ends.
      this.#inBackground(this.append(entry, name));
    } else {
      await this.append(entry, name);
    }
    this.#register(op, name, kind, value, options);
    return value;
  }

  #register<T>(
    op: number,
    name: string,
    kind: 'step' | 'transaction' | 'signal',
    value: T,
    options: Pick<StepOptions<T>, 'compensate' | 'retries'>,
  ): void {
    const { compensate } = options;
    if (compensate === undefined) return;
    const context = this.#stepContext(op, `undo:${name}`, 1, this.#parts.lease.signal);
    this.#undos.push({ op, name, kind, retries: options.retries, run: async () => compensate(value, context) });
  }

  async #sleep(name: string, wakeAt: () => number): Promise<void> {
    const op = this.#enter(name);
    const recorded = this.#at(op, name, 'sleep')?.sleep;
    let wakeAtMs = recorded?.wakeAtMs;
    let suspended = recorded?.suspended ?? false;
    if (wakeAtMs === undefined) {
      this.#stopIfCancelled();
      wakeAtMs = wakeAt();
      suspended = wakeAtMs - this.#now() > this.#parts.inlineSleepMs;
      await this.append({ t: 'sleep', op, name, wakeAtMs, suspended });
    }
    if (this.#now() >= wakeAtMs) return;
    this.#stopIfCancelled();
    if (!suspended) return waitFor(wakeAtMs, this.#parts.engine.now, this.#parts.lease.signal);
    this.#stop(new Suspend(wakeAtMs));
  }
}
