import { randomUUID } from 'node:crypto';
import { fingerprintOf } from '../core/canonical.js';
import { Engine, type EngineOptions, Lease } from '../core/engine.js';
import { ErrorCode, IdempotencyError } from '../core/errors.js';
import { isJournalStore, type JournalStore } from '../core/journal.js';
import { validateKey } from '../core/keys.js';
import { OutcomeKind } from '../core/outcome.js';
import type { ErrorRevivalOptions } from '../core/stored-error.js';
import { defaultSerializer } from '../core/value-codec.js';
import { makeDueNow } from './due-now.js';
import { EntryCodec, type ReadEntry, type StartEntry } from './entries.js';
import { execute, type RunEnd } from './executor.js';
import { WorkflowHandle } from './handle.js';
import { cancelKeyOf, runKeyOf } from './keys.js';
import { cancel, checkReason, type ListRunsOptions, listRuns, resume, status } from './operator.js';
import { type RecoverOptions, recoverDue, type WorkerOptions, WorkflowWorker } from './recovery.js';
import { Replay } from './replay.js';
import { readSignal, sendSignal } from './signals.js';
import type { DefineOptions, RunView, StartOptions, WorkflowFunction } from './types.js';

export interface WorkflowsOptions extends Omit<EngineOptions, 'store'>, ErrorRevivalOptions {
  /** Where runs and their journals live: a store that keeps journals (every built-in store but DynamoDB). */
  store: JournalStore;
  /**
   * Attempts a run may have, the first included: each time its holder stops without finishing (a
   * crash, a kill, a lost lease) and a worker takes it over counts one more; a takeover past the
   * limit parks it as dead with its last error. Wakes from sleeps do not count. Default 10.
   */
  maxAttempts?: number;
  /**
   * Sleeps up to this long (ms) wait in the process, holding the lease; longer ones let the lease
   * go and the run is woken by a recovery worker when due. Default 5,000.
   */
  inlineSleepMs?: number;
  /**
   * A run waiting for a signal (`ctx.waitForSignal`) holds no lease; `signal` wakes it at once,
   * and in case that wake-up is missed (a race, a worker down) it looks again after this long, in
   * ms. Default 60,000.
   */
  signalPollMs?: number;
}

/** One defined workflow: start runs of it. */
export interface WorkflowDefinition<I, O> {
  readonly name: string;
  readonly version: number;
  /**
   * Starts a run with id `workflowId` (its idempotency key) and runs it in this process; gives
   * its handle at once. An id that exists gives the existing run's handle (see `ifExists`); the
   * same id with other input throws `WORKFLOW_CONFLICT`.
   */
  start(workflowId: string, input: I, options?: StartOptions): Promise<WorkflowHandle<O>>;
  /** `start`, then its result. */
  run(workflowId: string, input: I, options?: StartOptions): Promise<O>;
}

interface Definition {
  name: string;
  version: number;
  fn: WorkflowFunction<unknown, unknown>;
}

/**
 * Durable workflows over a store: define them, start runs, resume the ones whose process died.
 *
 * @example
 * ```ts
 * const workflows = new Workflows({ store: new SqliteStore({ path: 'idem.db' }) });
 * const order = workflows.define('order', async (ctx, input: { id: string }) => {
 *   const charge = await ctx.step('charge', (step) => payments.charge(input.id, { idempotencyKey: step.key }));
 *   await ctx.step('email', () => mail.receipt(input.id, charge.id));
 *   return charge.id;
 * });
 * await order.run(`order-${id}`, { id });
 * ```
 */
export class Workflows {
  readonly engine: Engine;
  readonly store: JournalStore;
  /** @internal */
  readonly entryCodec: EntryCodec;
  /** @internal */
  readonly revival: ErrorRevivalOptions;
  readonly maxAttempts: number;
  readonly inlineSleepMs: number;
  readonly signalPollMs: number;
  readonly #definitions = new Map<string, Map<number, Definition>>();
  readonly #running = new Map<string, Promise<RunEnd>>();

  constructor(options: WorkflowsOptions) {
    if (options?.store === undefined || !isJournalStore(options.store)) {
      const name = (options?.store as { name?: string } | undefined)?.name;
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] workflows need a store that keeps journals${name === undefined ? '' : ` (the ${name} store does not)`}: MemoryStore, SqliteStore, PostgresStore, RedisStore or MysqlStore.`,
      );
    }
    if ('onStoreUnavailable' in options && options.onStoreUnavailable !== 'reject') {
      // A run records each step in its journal as it goes: run without it, and a resume repeats
      // every step. Workflows therefore always fail closed.
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] workflows always fail closed: a durable run cannot go on without its journal, so onStoreUnavailable is not an option here (got ${JSON.stringify(options.onStoreUnavailable)}). Leave it out; a start or step throws STORE_UNAVAILABLE while the store is down, and the run resumes once it is back.`,
      );
    }
    if (options.replayCacheMs) {
      // A run's record is reopened by a resume or an operator's retry: a copy kept as completed
      // would answer for a run that is running again.
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        '[idem] workflows do not take replayCacheMs: a completed run can be reopened (retried), so its record is always read from the store. Leave the option out.',
      );
    }
    this.engine = new Engine({ ...options, store: options.store });
    this.store = options.store;
    this.entryCodec = new EntryCodec(this.engine.codec);
    this.revival = {
      ...(options.errors ? { errors: options.errors } : {}),
      ...(options.reviveError ? { reviveError: options.reviveError } : {}),
    };
    this.maxAttempts = options.maxAttempts ?? 10;
    this.inlineSleepMs = options.inlineSleepMs ?? 5_000;
    this.signalPollMs = options.signalPollMs ?? 60_000;
    if (!Number.isSafeInteger(this.maxAttempts) || this.maxAttempts < 1) {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] maxAttempts must be a whole number of at least 1, got ${this.maxAttempts}.`,
      );
    }
  }

  /** Defines a workflow: `fn` is its body, run with a context whose steps make it durable. */
  define<I, O>(name: string, fn: WorkflowFunction<I, O>, options: DefineOptions = {}): WorkflowDefinition<I, O> {
    const version = options.version ?? 1;
    if (
      typeof name !== 'string' ||
      name === '' ||
      typeof fn !== 'function' ||
      !Number.isSafeInteger(version) ||
      version < 1
    ) {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        '[idem] define(name, fn, { version }): a non-empty name, an async function, and a whole version of at least 1.',
      );
    }
    const versions = this.#definitions.get(name) ?? new Map<number, Definition>();
    if (versions.has(version)) {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] workflow "${name}" version ${version} is defined twice; give the new code a higher version.`,
      );
    }
    versions.set(version, { name, version, fn: fn as WorkflowFunction<unknown, unknown> });
    this.#definitions.set(name, versions);
    return {
      name,
      version,
      start: (id, input, startOptions) =>
        this.#start(name, id, input, startOptions ?? {}) as Promise<WorkflowHandle<O>>,
      run: async (id, input, startOptions) => {
        const handle = await this.#start(name, id, input, startOptions ?? {});
        return handle.result() as Promise<O>;
      },
    };
  }

  /** The handle of run `workflowId`, started here or in any other process. */
  handle<O = unknown>(workflowId: string): WorkflowHandle<O> {
    return new WorkflowHandle<O>(this, validateKey(workflowId));
  }

  /** Run `workflowId` as operators see it: its state, input, result or error, and its steps. Throws `WORKFLOW_NOT_FOUND`. */
  status(workflowId: string): Promise<RunView> {
    return status(this, validateKey(workflowId));
  }

  /** A page of runs, in key order (the listing of `idem workflows list`). */
  list(options?: ListRunsOptions): Promise<{ runs: RunView[]; nextCursor: string | undefined }> {
    return listRuns(this, options);
  }

  /**
   * Asks run `workflowId` to stop: at its next step that would run, it runs the undos of its
   * finished steps and ends `cancelled`. False when it had finished already.
   */
  cancel(workflowId: string, reason = 'cancelled by an operator'): Promise<boolean> {
    return cancel(this, validateKey(workflowId), checkReason(reason));
  }

  /**
   * Sends signal `name` with `value` to run `workflowId` (an approval, an answer it waits for with
   * `ctx.waitForSignal`), and wakes the run if it waits. The first signal of a name counts: a
   * second is refused (false), so a repeated approval is harmless.
   */
  signal(workflowId: string, name: string, value?: unknown): Promise<boolean> {
    return sendSignal(this, validateKey(workflowId), name, value);
  }

  /** Resumes a parked run (`dead` or `blocked`): a worker takes it up again. False when it is not parked. */
  resume(workflowId: string): Promise<boolean> {
    return resume(this, validateKey(workflowId));
  }

  /** One pass of recovery: takes over due runs (holder died, sleep due) and starts them here. Returns how many. */
  recoverDue(options?: RecoverOptions): Promise<number> {
    return recoverDue(this, options);
  }

  /** A recovery worker over these workflows; call `start()` on it. */
  worker(options?: WorkerOptions): WorkflowWorker {
    return new WorkflowWorker(this, options);
  }

  /** @internal */
  localRun(key: string): Promise<RunEnd> | undefined {
    return this.#running.get(key);
  }

  /** Runs this process is executing now. */
  get runningCount(): number {
    return this.#running.size;
  }

  /** Resolves when one of the runs this process executes reaches an end. @internal */
  settledOne(): Promise<unknown> {
    return Promise.race([...this.#running.values()].map((run) => run.catch(() => undefined)));
  }

  /** Waits for the runs this process is executing to reach an end (completed, suspended, stopped...). */
  async drain(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running.values()]);
  }

  async #start(name: string, id: string, input: unknown, options: StartOptions): Promise<WorkflowHandle<unknown>> {
    const definition = this.#latest(name);
    validateKey(id);
    const key = runKeyOf(id);
    const ifExists = options.ifExists ?? 'attach';
    const decision = await this.engine.begin({ key, fingerprint: fingerprintOf({ workflow: name, input }) });
    if (decision.kind === 'mismatch') {
      throw new IdempotencyError(
        ErrorCode.WORKFLOW_CONFLICT,
        `[idem] workflow id ${JSON.stringify(id)} was started before with another workflow or other input; use a new id for new work.`,
        { key },
      );
    }
    if (decision.kind === 'run') {
      // A takeover (the run's holder died) resumes its journal; the input is still passed, for a
      // run whose starter died before it recorded its start: then this start records it.
      await this.#launch(decision.lease, { definition, id, input, parent: options.parent });
      if (ifExists === 'refuse' && decision.lease.attempts > 1) throw exists(id);
      return this.handle(id);
    }
    if (ifExists === 'refuse') throw exists(id);
    if (ifExists === 'rerun-failed' && decision.kind === 'replay' && decision.outcome.kind === OutcomeKind.error) {
      const lease = await this.#reopen(decision.record.token, key);
      if (lease !== undefined) await this.#launch(lease, { definition, id, input, parent: options.parent });
    }
    return this.handle(id);
  }

  async #reopen(expectedToken: string, key: string): Promise<Lease | undefined> {
    const { engine } = this;
    const nowMs = engine.now();
    const token = randomUUID();
    const reopened = await engine.call('reopen', () =>
      this.store.reopen({
        key,
        expectedToken,
        token,
        nowMs,
        leaseExpiresAtMs: nowMs + engine.leaseMs,
        expiresAtMs: nowMs + engine.retentionMs,
      }),
    );
    if (!reopened) return undefined;
    const record = await engine.call('get', () => this.store.get(key, nowMs));
    if (record === null || record.token !== token) return undefined;
    return Lease.granted(engine, record);
  }

  /**
   * Runs the run whose lease we hold, in the background: from a fresh start entry, or resumed
   * from its journal. A takeover whose journal has no start entry of this record (the starter died
   * between claim and start) is released when we cannot start it: nothing of it ran.
   * @internal
   */
  launch(lease: Lease): Promise<void> {
    return this.#launch(lease, undefined);
  }

  async #launch(
    lease: Lease,
    fresh: { definition: Definition; id: string; input: unknown; parent?: string | undefined } | undefined,
  ): Promise<void> {
    const { engine } = this;
    let entries: ReadEntry[] = [];
    if (lease.attempts > 1 || fresh === undefined) {
      const raw = await engine.call('entries', () => this.store.entries(lease.key));
      entries = raw.map((entry) => this.entryCodec.decode(lease.key, entry));
    }
    let start = entries[0]?.entry;
    if (start?.t !== 'start' || start.createdAtMs !== lease.createdAtMs) {
      if (fresh === undefined) {
        await lease.release();
        return;
      }
      const entry: StartEntry = {
        t: 'start',
        name: fresh.definition.name,
        version: fresh.definition.version,
        id: fresh.id,
        runId: randomUUID(),
        input: fresh.input,
        createdAtMs: lease.createdAtMs,
        attemptsBefore: lease.attempts - 1,
        ...(fresh.parent === undefined ? {} : { parentId: fresh.parent }),
      };
      const data = this.entryCodec.encode(lease.key, 0, entry);
      const ok = await engine.call('append', () =>
        this.store.append({ key: lease.key, token: lease.token, seq: 0, data, nowMs: engine.now() }),
      );
      if (!ok) return;
      start = entry;
      entries = [{ seq: 0, atMs: engine.now(), entry }];
    }
    const definition = this.#definitions.get(start.name)?.get(start.version);
    if (definition === undefined) {
      // Another process may know this workflow: give the run back at once rather than sit on it.
      lease.stopHeartbeat();
      await makeDueNow(engine, this.store, lease.key, lease.token);
      throw unknownWorkflow(start.name, start.version);
    }
    const run = execute({
      engine,
      store: this.store,
      codec: this.entryCodec,
      lease,
      start,
      replay: new Replay(entries),
      inlineSleepMs: this.inlineSleepMs,
      signalPollMs: this.signalPollMs,
      readSignal: (name) => readSignal(this, start.id, name),
      fn: definition.fn,
      maxAttempts: this.maxAttempts,
      cancelled: () => this.cancelReason(start.id),
    })
      // A store that fails while the run lets go of its lease (suspend, park) ends it like a crash:
      // the lease runs out and recovery resumes it. Never an unhandled rejection.
      .catch((): RunEnd => {
        lease.stopHeartbeat();
        return 'stopped';
      })
      .finally(() => this.#running.delete(lease.key));
    this.#running.set(lease.key, run);
  }

  /** The reason run `id` was asked to stop, or `undefined`. @internal */
  async cancelReason(id: string): Promise<string | undefined> {
    const key = cancelKeyOf(id);
    const record = await this.engine.call('get', () => this.store.get(key, this.engine.now()));
    if (record?.result == null) return record === null ? undefined : 'cancelled';
    const outcome = this.engine.codec.decode(record.result, key);
    return String(defaultSerializer.decode(outcome.payload));
  }

  /** The newest version of workflow `name` defined here. */
  #latest(name: string): Definition {
    const versions = this.#definitions.get(name);
    if (versions === undefined) throw unknownWorkflow(name);
    return versions.get(Math.max(...versions.keys())) as Definition;
  }

  /** Is workflow `name` (at `version`) defined in this process? @internal */
  knows(name: string, version: number): boolean {
    return this.#definitions.get(name)?.has(version) === true;
  }

  /**
   * Called when a due run belongs to a workflow (or version) this process does not define: it is
   * left to a process that does. A hook for workers that log; does nothing here. @internal
   */
  unknownRun(_name: string, _version: number): void {}
}

function exists(id: string): IdempotencyError {
  return new IdempotencyError(
    ErrorCode.WORKFLOW_EXISTS,
    `[idem] workflow id ${JSON.stringify(id)} was started already (ifExists: 'refuse').`,
  );
}

export function unknownWorkflow(name: string, version?: number): IdempotencyError {
  const which = version === undefined ? `"${name}"` : `"${name}" version ${version}`;
  return new IdempotencyError(
    ErrorCode.WORKFLOW_UNKNOWN,
    `[idem] no workflow ${which} is defined in this process; define it (keep old versions defined until their runs finish) before starting or resuming runs.`,
  );
}
