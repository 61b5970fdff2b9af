import { hashText } from '../core/canonical.js';
import { storeKeyOf } from '../core/keys.js';
import type { StepContext } from './types.js';

/** The namespace of run records: a workflow id is a key in it, whatever the workflow's name. */
const RUNS = 'idem:workflow';
/** The namespace of signals, one record per workflow id and signal name. */
const SIGNALS = 'idem:workflow-signal';

/** The store key of signal `name` of workflow `id`. */
export function signalKeyOf(id: string, name: string): string {
  return storeKeyOf(SIGNALS, id, name);
}

/** The namespace of cancellation requests, one per workflow id. */
const CANCELS = 'idem:workflow-cancel';

/** The store key of the run with workflow id `id`. */
export function runKeyOf(id: string): string {
  return storeKeyOf(RUNS, '', id);
}

/** The store key of the cancellation request of workflow `id`. */
export function cancelKeyOf(id: string): string {
  return storeKeyOf(CANCELS, '', id);
}

/**
 * The key a step passes downstream (`Idempotency-Key`): a hash of the run id and the step's place
 * and name, so it is the same on every attempt and every resume of this run, and differs between
 * runs (a re-run after a failure gets new keys) and between steps.
 */
export function deriveKey(runId: string, what: string): string {
  return `idem_${hashText(`${runId.length}:${runId}|${what}`)}`;
}

/** A step's context; its key is a hash, made when the step asks for it, not for every step. */
export function stepContextOf(
  runId: string,
  workflowId: string,
  what: string,
  attempt: number,
  signal: AbortSignal,
): StepContext {
  let key: string | undefined;
  return {
    get key() {
      key ??= deriveKey(runId, what);
      return key;
    },
    attempt,
    signal,
    workflowId,
  };
}
