/**
 * Recovery: finds runs a worker may take over (their holder died, or their sleep is due) and runs
 * them. Any number of workers, in any number of processes, can share one store: each takeover is
 * an atomic claim, so one run is never run by two workers at once.
 */
import { ErrorCode, IdempotencyError, isIdempotencyError } from '../core/errors.js';
import { StoreLimits } from '../core/store.js';
import type { StartEntry } from './entries.js';
import type { Workflows } from './workflows.js';

export interface RecoverOptions {
  /** Most runs to take over in this pass. Default 100. */
  limit?: number;
}

/**
 * One pass: takes over up to `limit` due runs and starts them in this process (see `drain` to
 * wait for them). Returns how many it took. Runs of workflows this process does not define are
 * left to the processes that do.
 */
export async function recoverDue(workflows: Workflows, options: RecoverOptions = {}): Promise<number> {
  const limit = options.limit ?? 100;
  const { engine, store } = workflows;
  let taken = 0;
  let cursor: string | undefined;
  do {
    const page = await engine.call('runs', () =>
      store.runs({ dueBy: engine.now(), limit: StoreLimits.maxListLimit, ...(cursor === undefined ? {} : { cursor }) }),
    );
    for (const key of page.keys) {
      if (taken >= limit) return taken;
      if (workflows.localRun(key) !== undefined) continue;
      if (await takeOver(workflows, key)) taken += 1;
    }
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return taken;
}

/**
 * Claims the due run `key` and starts it here; false when another worker was first or it is not
 * ours to run. The run's start entry is read before the claim: a run of a workflow (or version)
 * this process does not define is left to a process that does, without a claim, so that workers
 * loading different modules never count as crashes of each other's runs.
 */
async function takeOver(workflows: Workflows, key: string): Promise<boolean> {
  const { engine, store } = workflows;
  const record = await engine.call('get', () => store.get(key, engine.now()));
  if (record === null || record.state !== 'in_progress' || record.leaseExpiresAtMs > engine.now()) return false;
  const start = await startOf(workflows, key);
  // Another face's journal (a notification's send log) or one sealed with other keys: not a run.
  if (start === undefined) return false;
  if (start.createdAtMs === record.createdAtMs && !workflows.knows(start.name, start.version)) {
    workflows.unknownRun(start.name, start.version);
    return false;
  }
  const decision = await engine.begin({ key, fingerprint: record.fingerprint });
  if (decision.kind !== 'run') return false;
  try {
    await workflows.launch(decision.lease);
  } catch (error) {
    if (isIdempotencyError(error, ErrorCode.WORKFLOW_UNKNOWN)) return false;
    throw error;
  }
  return workflows.localRun(key) !== undefined;
}

/** The run's start entry, when its journal has one. */
async function startOf(workflows: Workflows, key: string): Promise<StartEntry | undefined> {
  const { engine, store, entryCodec } = workflows;
  const entries = await engine.call('entries', () => store.entries(key));
  const first = entries[0];
  if (first?.seq !== 0) return undefined;
  try {
    const { entry } = entryCodec.decode(key, first);
    return entry.t === 'start' ? entry : undefined;
  } catch {
    return undefined;
  }
}

export interface WorkerOptions {
  /** Runs this worker executes at once. Default 10. */
  concurrency?: number;
  /** Pause between looks for due runs when there is nothing to do, in ms. Default 1,000. */
  pollMs?: number;
  /** Called with an error the worker met and went past (a store outage); default: none. */
  onError?: (error: unknown) => void;
}

/**
 * A recovery worker: in a loop, takes over due runs (up to `concurrency` at once) and runs them.
 * `idem workflows worker` runs one.
 */
export class WorkflowWorker {
  readonly #workflows: Workflows;
  readonly #concurrency: number;
  readonly #pollMs: number;
  readonly #onError: (error: unknown) => void;
  #loop: Promise<void> | undefined;
  #stopping = false;
  #wake: (() => void) | undefined;

  constructor(workflows: Workflows, options: WorkerOptions = {}) {
    this.#workflows = workflows;
    this.#concurrency = options.concurrency ?? 10;
    this.#pollMs = options.pollMs ?? 1000;
    this.#onError = options.onError ?? (() => {});
    if (!Number.isSafeInteger(this.#concurrency) || this.#concurrency < 1 || !(this.#pollMs > 0)) {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        '[idem] worker options: concurrency must be a whole number of at least 1 and pollMs a positive number of ms.',
      );
    }
  }

  /** Starts the loop (once). */
  start(): this {
    this.#loop ??= this.#run();
    return this;
  }

  /** Stops looking for work and waits for the runs it started to reach an end. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#loop;
    await this.#workflows.drain();
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      const free = this.#concurrency - this.#workflows.runningCount;
      let taken = 0;
      if (free > 0) {
        try {
          taken = await recoverDue(this.#workflows, { limit: free });
        } catch (error) {
          this.#onError(error);
        }
      }
      if (taken === 0 || free <= taken) await this.#pause();
    }
  }

  /** Waits `pollMs`, or less when a run ends (a slot is free) or the worker stops. */
  #pause(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, this.#pollMs);
      this.#wake = done;
      if (this.#workflows.runningCount >= this.#concurrency) void this.#workflows.settledOne().then(done);
    });
  }
}
