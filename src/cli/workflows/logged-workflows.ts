/**
 * The `Workflows` of `idem workflows worker`: the user's module defines its workflows on it, and it
 * says in one line each run the worker takes over and how that run ended.
 */
import type { Lease } from '../../core/engine.js';
import { ErrorCode, isIdempotencyError } from '../../core/errors.js';
import type { RunEnd } from '../../workflow/executor.js';
import {
  type DefineOptions,
  type WorkflowDefinition,
  type WorkflowFunction,
  Workflows,
  type WorkflowsOptions,
} from '../../workflow/index.js';
import { readRun } from '../../workflow/operator.js';
import { reasonOf } from '../cli-error.js';
import { took } from './run-format.js';

/** What each end of a run means to the operator reading the log. */
const ENDS: Record<RunEnd, string> = {
  completed: 'completed',
  failed: 'failed (its undos ran)',
  cancelled: 'cancelled (its undos ran)',
  suspended: 'sleeping: a worker wakes it when its sleep is due',
  parked: 'parked',
  stopped: 'stopped (lease lost or store failed): a worker takes it up again after its lease',
};

export class LoggedWorkflows extends Workflows {
  /** `name@version` of every workflow the module defined, in order. */
  readonly defined: string[] = [];
  /** Runs taken over, then runs ended by how they ended. */
  readonly counts = new Map<'taken' | RunEnd, number>();
  readonly #log: (line: string) => void;
  readonly #unknown = new Set<string>();

  constructor(options: WorkflowsOptions, log: (line: string) => void) {
    super(options);
    this.#log = log;
  }

  override define<I, O>(name: string, fn: WorkflowFunction<I, O>, options?: DefineOptions): WorkflowDefinition<I, O> {
    const definition = super.define(name, fn, options);
    this.defined.push(`${definition.name}@${definition.version}`);
    return definition;
  }

  /**
   * The worker's recovery launches every run it took over through here: the run goes on in the
   * background, and is followed to its end for the log without holding it up.
   * @internal
   */
  override async launch(lease: Lease): Promise<void> {
    try {
      await super.launch(lease);
    } catch (error) {
      if (isIdempotencyError(error, ErrorCode.WORKFLOW_UNKNOWN)) this.#once(reasonOf(error).split(';')[0] ?? '');
      throw error;
    }
    const run = this.localRun(lease.key);
    // No run: the run's start was never recorded (its starter died first), so it was let go.
    if (run !== undefined) void this.#follow(lease, run);
  }

  /** A due run of a workflow the module does not define: said once, and left alone. @internal */
  override unknownRun(name: string, version: number): void {
    this.#once(`[idem] no workflow "${name}" version ${version} is defined in this process`);
  }

  /** Counts as the worker's summary says them: `3 taken, 2 completed, 1 sleeping`. */
  summary(): string {
    const parts = [...this.counts].map(([what, count]) => `${count} ${what === 'suspended' ? 'sleeping' : what}`);
    return parts.length === 0 ? 'no runs taken' : parts.join(', ');
  }

  async #follow(lease: Lease, run: Promise<RunEnd>): Promise<void> {
    const startedMs = Date.now();
    this.#count('taken');
    const view = await readRun(this, lease.key).catch(() => undefined);
    const id = view?.id ?? `run ${lease.key}`;
    this.#log(`took ${id}${view === undefined ? '' : ` (${view.name}@${view.version})`}, attempt ${lease.attempts}`);
    const end = await run.catch((): RunEnd => 'stopped');
    this.#count(end);
    let how = ENDS[end];
    if (end === 'parked') {
      const parked = await readRun(this, lease.key).catch(() => undefined);
      if (parked?.error !== undefined) how = `parked ${parked.state}: ${reasonOf(new Error(parked.error.message))}`;
    }
    this.#log(`${id} ${how} after ${took(Date.now() - startedMs)}`);
  }

  #count(what: 'taken' | RunEnd): void {
    this.counts.set(what, (this.counts.get(what) ?? 0) + 1);
  }

  /** Says a line once per worker: the same due run is met again at every poll. */
  #once(line: string): void {
    if (this.#unknown.has(line)) return;
    this.#unknown.add(line);
    this.#log(`${line}: its due runs are left to a process that defines it`);
  }
}
