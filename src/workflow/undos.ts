/** Compensation: the undos of a run's finished steps, run last first, each recorded so it runs once. */
import { describeError } from '../core/stored-error.js';
import type { UndoEntry } from './entries.js';
import { pauseBefore, retryPolicy, waitFor } from './retry.js';
import { compensationFailed } from './run-control.js';
import type { StepOptions } from './types.js';

export interface Undo {
  op: number;
  name: string;
  /** What the undone operation is: the replay checks the position against it. */
  kind: 'step' | 'transaction' | 'signal';
  run: () => Promise<unknown>;
  retries: StepOptions<unknown>['retries'];
}

export interface UndoJournal {
  /** True when the undo's record says it ran already. */
  undone(undo: Undo): boolean;
  /** Records an undo that finished or gave up. */
  record(entry: UndoEntry): Promise<void>;
  now: () => number;
  /** Aborts the pauses between attempts when the run loses its lease. */
  signal: AbortSignal;
}

/**
 * Runs `undos` last first, each retried like its step; one that keeps failing is recorded as failed
 * and throws `WORKFLOW_DEAD` (the run is parked for an operator).
 */
export async function runUndos(undos: readonly Undo[], journal: UndoJournal): Promise<void> {
  for (const undo of [...undos].reverse()) {
    if (journal.undone(undo)) continue;
    const policy = retryPolicy(undo.retries);
    for (let attempt = 1; ; attempt++) {
      try {
        await undo.run();
        break;
      } catch (error) {
        if (attempt >= policy.maxAttempts) {
          await journal.record({ t: 'undo', op: undo.op, name: undo.name, ok: false, error: describeError(error) });
          throw compensationFailed(undo.name, error);
        }
        await waitFor(journal.now() + pauseBefore(attempt, policy), journal.now, journal.signal);
      }
    }
    await journal.record({ t: 'undo', op: undo.op, name: undo.name, ok: true });
  }
}
