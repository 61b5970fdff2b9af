import type { StepDatabase } from './sql/step-database.js';

/** How a failed step is tried again. */
export interface RetryOptions {
  /** Attempts in all, the first included: 1 means no retry. Default 3. */
  maxAttempts?: number;
  /** Pause before the second attempt, in ms; it doubles after each failure. Default 100. */
  baseMs?: number;
  /** Longest pause between attempts, in ms. Default 10,000. */
  maxMs?: number;
}

/** What a step's function can learn about its own call. */
export interface StepContext {
  /**
   * A key for this step, stable across retries, crashes and resumes of the same run: pass it to a
   * payment provider or any API as its `Idempotency-Key`, so the effect happens once even when the
   * step runs twice. 43 characters of base64url after `idem_`.
   */
  readonly key: string;
  /** 1 on the first attempt; counts across crashes. */
  readonly attempt: number;
  /** Aborts when the step times out or the run loses its lease: stop if you can. */
  readonly signal: AbortSignal;
  /** The workflow id the run was started with. */
  readonly workflowId: string;
}

/** What `reconcile` found out about an effect whose outcome is unknown. */
export type Reconciliation<T> = { done: true; value: T } | { done: false };

export interface StepOptions<T> {
  /** How failed attempts are retried. Default: 3 attempts, 100 ms doubling up to 10 s. */
  retries?: RetryOptions;
  /** Longest an attempt may run, in ms; then it fails with `STEP_TIMEOUT` (and may be retried). Default: none. */
  timeoutMs?: number;
  /** Errors that must not be retried: the step fails at once. Default: none (every error is retried). */
  isFinal?: (error: unknown) => boolean;
  /**
   * The undo of this step's effect, run (once, retried like the step) if the workflow gives up
   * after this step finished. Undos run in reverse order of their steps.
   */
  compensate?: (value: T, step: StepContext) => Promise<unknown> | unknown;
  /**
   * For an effect whose outcome can be unknown (the call timed out after the provider acted):
   * Idem records the intent before the call and the result after it. A re-run that finds the
   * intent without a result calls `reconcile` to ask what happened: `{ done: true, value }` takes
   * that as the step's result, `{ done: false }` runs the step again (with the same `key`).
   * `reconcile: true` records the intent and always retries with the same key.
   */
  reconcile?: true | ((step: StepContext) => Promise<Reconciliation<T>> | Reconciliation<T>);
}

/** What a workflow's body uses to make its work durable. */
export interface WorkflowContext {
  /** The workflow id the run was started with. */
  readonly workflowId: string;
  /** This run's id: a re-run after a failure gets a new one. */
  readonly runId: string;
  /**
   * Runs `fn` once for this run and records its result; on a re-run, a finished step gives back its
   * recorded result (or throws its recorded error) without running. Steps are told apart by their
   * position in the body and checked by `name`.
   */
  step<T>(name: string, fn: (step: StepContext) => Promise<T> | T, options?: StepOptions<T>): Promise<T>;
  /**
   * Runs `fn` inside one transaction of your SQL database, with the step's record written in the
   * same transaction: the writes and the record commit together or not at all, so the writes
   * happen exactly once. `db` is made by `postgresSteps`, `sqliteSteps` or `mysqlSteps`.
   */
  transaction<T, Tx>(
    name: string,
    db: StepDatabase<Tx>,
    fn: (tx: Tx) => Promise<T> | T,
    options?: Pick<StepOptions<T>, 'retries' | 'isFinal' | 'compensate'>,
  ): Promise<T>;
  /** Waits `ms`, durably: a run stopped meanwhile wakes when it is due (see the recovery worker). */
  sleep(ms: number, name?: string): Promise<void>;
  /** Waits until `date` (a Date or ms since epoch), durably. */
  sleepUntil(date: Date | number, name?: string): Promise<void>;
  /** A key derived from the run and `name`, stable across re-runs: for calls made outside steps. */
  key(name: string): string;
  /**
   * Waits, durably, for the signal `name` sent to this run with `workflows.signal(id, name, value)`
   * (an approval, a webhook's answer), and gives its value. The run lets go of its lease while it
   * waits and is woken when the signal comes. With `timeoutMs`, it fails with `STEP_TIMEOUT` when
   * none came by then. A signal sent before the wait began is found at once.
   */
  waitForSignal<T = unknown>(name: string, options?: { timeoutMs?: number }): Promise<T>;
  /**
   * Starts run `childId` of another workflow, once, linked to this run (its status names this run
   * as its parent), and gives its result: a re-run of this step attaches to the same child.
   */
  child<I, O>(definition: ChildDefinition<I, O>, childId: string, input: I): Promise<O>;
}

/** What `ctx.child` needs of a workflow definition. */
export interface ChildDefinition<I, O> {
  readonly name: string;
  start(workflowId: string, input: I, options?: StartOptions): Promise<{ result(): Promise<O> }>;
}

export type WorkflowFunction<I, O> = (ctx: WorkflowContext, input: I) => Promise<O>;

export interface DefineOptions {
  /**
   * The version of this code. A run resumes with the version it started with: keep the old
   * definition (same name, its version) until its runs finish. New runs take the highest. Default 1.
   */
  version?: number;
}

export interface StartOptions {
  /**
   * When a run with this id exists: `'attach'` gives its handle (default); `'refuse'` throws
   * `WORKFLOW_EXISTS`; `'rerun-failed'` starts it again from the start if it failed or was
   * cancelled, and attaches otherwise.
   */
  ifExists?: 'attach' | 'refuse' | 'rerun-failed';
  /** The workflow id of the run that starts this one (set by `ctx.child`): shown as `parentId`. */
  parent?: string;
}

/** Where a run stands. */
export type RunState =
  | 'running'
  | 'pending'
  | 'sleeping'
  | 'waiting'
  | 'completed'
  | 'failed'
  | 'cancelled'
  | 'blocked'
  | 'dead';

/** One operation of a run, for operators. */
export interface StepView {
  position: number;
  name: string;
  kind: 'step' | 'transaction' | 'sleep' | 'signal';
  state: 'done' | 'failed' | 'running' | 'waiting' | 'unknown-outcome';
  attempts: number;
  startedAtMs?: number;
  endedAtMs?: number;
  value?: unknown;
  error?: { name: string; message: string };
  /** For sleeps: when it ends. */
  wakeAtMs?: number;
  /** True when its compensation ran. */
  undone?: boolean;
}

/** A run as operators see it (`idem workflows show`). */
export interface RunView {
  id: string;
  name: string;
  version: number;
  runId: string;
  state: RunState;
  /** Claims of the run's record: 1, then one more per takeover (a crash, or a wake after a sleep). */
  attempts: number;
  createdAtMs: number;
  updatedAtMs: number;
  leaseExpiresAtMs: number;
  input: unknown;
  /** The run that started this one with `ctx.child`. */
  parentId?: string;
  /** The result of a completed run. */
  result?: unknown;
  /** Why a run failed, was cancelled or is parked. */
  error?: { name: string; message: string; code?: string };
  steps: StepView[];
}
