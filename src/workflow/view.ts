/** A run's record and journal, read as operators see it: its state and a timeline of its steps. */
import type { Outcome } from '../core/outcome.js';
import type { IdempotencyRecord } from '../core/store.js';
import type { StoredError } from '../core/stored-error.js';
import { defaultSerializer } from '../core/value-codec.js';
import type { ReadEntry, StartEntry } from './entries.js';
import type { StoredOutcome } from './executor.js';
import type { RunView, StepView } from './types.js';

export function runView(
  record: IdempotencyRecord,
  entries: readonly ReadEntry[],
  nowMs: number,
  decode: (result: Uint8Array) => Outcome,
): RunView {
  const start = entries[0]?.entry as StartEntry;
  const steps = stepsOf(entries, nowMs);
  const view: RunView = {
    id: start.id,
    name: start.name,
    version: start.version,
    runId: start.runId,
    state: 'running',
    attempts: record.attempts,
    createdAtMs: record.createdAtMs,
    updatedAtMs: record.updatedAtMs,
    leaseExpiresAtMs: record.leaseExpiresAtMs,
    input: start.input,
    ...(start.parentId === undefined ? {} : { parentId: start.parentId }),
    steps,
  };
  if (record.state === 'completed' && record.result !== null) {
    const outcome = defaultSerializer.decode(decode(record.result).payload) as StoredOutcome;
    if (outcome.ok) {
      view.state = 'completed';
      view.result = outcome.value;
    } else {
      view.state = outcome.cancelled ? 'cancelled' : 'failed';
      view.error = brief(outcome.error);
    }
    return view;
  }
  const last = [...entries].reverse().find(({ entry }) => entry.t !== 'undo' && entry.t !== 'attempt')?.entry;
  if (last?.t === 'dead' || last?.t === 'blocked') {
    view.state = last.t;
    view.error = brief(last.error);
  } else if (record.leaseExpiresAtMs <= nowMs) {
    view.state = 'pending';
  } else if (last?.t === 'sleep' && last.suspended && last.wakeAtMs > nowMs) {
    view.state = 'sleeping';
  } else if (last?.t === 'wait') {
    view.state = 'waiting';
  }
  return view;
}

/** One line per operation position, in order, from its entries. */
function stepsOf(entries: readonly ReadEntry[], nowMs: number): StepView[] {
  const steps = new Map<number, StepView>();
  const at = (op: number, name: string, kind: StepView['kind']): StepView => {
    let step = steps.get(op);
    if (step === undefined) {
      step = { position: op, name, kind, state: 'running', attempts: 0 };
      steps.set(op, step);
    }
    return step;
  };
  for (const { entry, atMs } of entries) {
    switch (entry.t) {
      case 'intent':
        at(entry.op, entry.name, 'step').state = 'unknown-outcome';
        break;
      case 'attempt': {
        const step = at(entry.op, entry.name, 'step');
        step.attempts = entry.attempt;
        step.error = brief(entry.error);
        step.state = 'running';
        break;
      }
      case 'step': {
        const step = at(entry.op, entry.name, entry.kind);
        Object.assign(step, {
          kind: entry.kind,
          state: entry.ok ? 'done' : 'failed',
          attempts: entry.attempts,
          startedAtMs: entry.startedAtMs,
          endedAtMs: entry.endedAtMs,
        });
        if (entry.ok) step.value = entry.value;
        else step.error = brief(entry.error as StoredError);
        break;
      }
      case 'sleep': {
        const step = at(entry.op, entry.name, 'sleep');
        const state = entry.wakeAtMs <= nowMs ? 'done' : 'waiting';
        Object.assign(step, {
          state,
          wakeAtMs: entry.wakeAtMs,
          startedAtMs: atMs,
          endedAtMs: entry.wakeAtMs,
          attempts: 1,
        });
        break;
      }
      case 'wait': {
        const step = at(entry.op, entry.name, 'signal');
        Object.assign(step, { kind: 'signal', state: 'waiting', startedAtMs: step.startedAtMs ?? atMs, attempts: 1 });
        break;
      }
      case 'undo':
        at(entry.op, entry.name, 'step').undone = entry.ok;
        break;
      default:
        break;
    }
  }
  return [...steps.values()].sort((a, b) => a.position - b.position);
}

function brief(error: StoredError): { name: string; message: string; code?: string } {
  const view: { name: string; message: string; code?: string } = {
    name: String(error.name),
    message: String(error.message),
  };
  if (typeof error.code === 'string') view.code = error.code;
  return view;
}
