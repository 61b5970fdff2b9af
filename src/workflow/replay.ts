/**
 * The journal as the body replays it: for each operation position, what was recorded (its final
 * result, its intent, its failed attempts, its sleep, its compensation), and a check that the
 * code asks for the same operation at the same position.
 */
import { ErrorCode, IdempotencyError } from '../core/errors.js';
import type { AttemptEntry, ReadEntry, SleepEntry, StepEntry } from './entries.js';

export type OpKind = 'step' | 'transaction' | 'sleep' | 'signal';

/** What the journal holds for one operation position. */
export interface RecordedOp {
  name: string;
  kind: OpKind;
  result?: StepEntry;
  intent?: boolean;
  attempts: AttemptEntry[];
  sleep?: SleepEntry;
  /** For a signal: the limit of its wait, once it has waited (null: none). */
  waitUntilMs?: number | null;
  undone?: boolean;
}

export class Replay {
  readonly #ops = new Map<number, RecordedOp>();
  /** The next free journal position: appends go there and after. */
  nextSeq: number;
  /** Sleeps after which the run let go of its lease: each one explains a takeover. */
  readonly suspendedSleeps: number;
  /** The attempts count at the last operator resume, 0 when never resumed. */
  readonly resumedAtAttempts: number;
  /** True when the run already gave up (its `failed` entry is recorded): only compensations are left. */
  readonly gaveUp: boolean;
  /** The last error recorded (a failed attempt or step), for a run parked as dead. */
  readonly lastError: unknown;

  constructor(entries: readonly ReadEntry[]) {
    let suspended = 0;
    let resumedAt = 0;
    let gaveUp = false;
    let lastError: unknown;
    for (const { entry } of entries) {
      switch (entry.t) {
        case 'step':
          this.#op(entry.op, entry.name, entry.kind).result = entry;
          if (!entry.ok) lastError = entry.error;
          break;
        case 'attempt':
          this.#op(entry.op, entry.name, 'step').attempts.push(entry);
          lastError = entry.error;
          break;
        case 'intent':
          this.#op(entry.op, entry.name, 'step').intent = true;
          break;
        case 'sleep':
          this.#op(entry.op, entry.name, 'sleep').sleep = entry;
          if (entry.suspended) suspended += 1;
          break;
        case 'wait':
          this.#op(entry.op, entry.name, 'signal').waitUntilMs = entry.untilMs;
          suspended += 1;
          break;
        case 'undo':
          this.#op(entry.op, entry.name, 'step').undone = true;
          break;
        case 'failed':
          gaveUp = true;
          break;
        case 'resumed':
          resumedAt = entry.attempts;
          break;
        default:
          break;
      }
    }
    const last = entries.at(-1);
    this.nextSeq = last === undefined ? 0 : last.seq + 1;
    this.suspendedSleeps = suspended;
    this.resumedAtAttempts = resumedAt;
    this.gaveUp = gaveUp;
    this.lastError = lastError;
  }

  /** What is recorded at `op`, checked against what the code asks for there; `undefined` when nothing is. */
  at(op: number, name: string, kind: OpKind): RecordedOp | undefined {
    const recorded = this.#ops.get(op);
    if (recorded === undefined) return undefined;
    const sameKind = recorded.kind === kind || (recorded.kind === 'step' && kind === 'transaction');
    if (recorded.name !== name || !sameKind) {
      throw nondeterminism(
        `at position ${op} the code asks for ${kind} "${name}" but the journal recorded ${recorded.kind} "${recorded.name}"`,
      );
    }
    return recorded;
  }

  /** Positions recorded at or after `count`: operations the code did not ask for this time. */
  unvisited(count: number): RecordedOp | undefined {
    for (const [op, recorded] of this.#ops) {
      if (op >= count && (recorded.result !== undefined || recorded.sleep !== undefined)) return recorded;
    }
    return undefined;
  }

  #op(op: number, name: string, kind: OpKind): RecordedOp {
    let recorded = this.#ops.get(op);
    if (recorded === undefined) {
      recorded = { name, kind, attempts: [] };
      this.#ops.set(op, recorded);
    } else if (kind !== 'step') {
      // A transaction's or sleep's own entry says what the position is; intents and attempts only say "step".
      recorded.kind = kind;
    }
    return recorded;
  }
}

export function nondeterminism(what: string): IdempotencyError {
  return new IdempotencyError(
    ErrorCode.WORKFLOW_NONDETERMINISM,
    `[idem] the workflow's code does not match its journal: ${what}. The run is parked, nothing more ran. Deploy code that runs the recorded steps in their order (keep the old version defined, see docs/workflow.md "Changing a workflow"), then resume it with \`idem workflows resume\`.`,
  );
}
