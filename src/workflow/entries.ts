/**
 * What a run's journal holds: one entry per append, encoded with the value serializer (JSON when
 * exact, else a structured clone) and sealed like results when an encryption key is set, bound to
 * the run's key and the entry's position so an entry cannot be moved to another run or place.
 *
 * Entries that carry an `op` belong to the deterministic operation at that position of the body
 * (the n-th `step`, `transaction` or `sleep` it calls); the others (`dead`, `blocked`, `resumed`,
 * `failed`) are the run's own history for operators and are skipped by the replay.
 */
import type { JournalEntry } from '../core/journal.js';
import { type OutcomeCodec, OutcomeKind } from '../core/outcome.js';
import type { StoredError } from '../core/stored-error.js';
import { defaultSerializer } from '../core/value-codec.js';

/** Entry 0: what was started, so any process can resume it. */
export interface StartEntry {
  t: 'start';
  /** The workflow's name and version (the definition to resume with). */
  name: string;
  version: number;
  /** The workflow id the caller gave. */
  id: string;
  /** A random id of this run (a re-run after a failure gets a new one); derived keys hang off it. */
  runId: string;
  input: unknown;
  /** The record's `createdAtMs` when the run began: a journal left by an earlier record of the key does not match. */
  createdAtMs: number;
  /** Claims of the record before this run began (0, or more for a run started again after a failure). */
  attemptsBefore: number;
  /** The workflow id of the run that started this one with `ctx.child`, if one did. */
  parentId?: string;
}

/** A step's (or transaction's) final result: the value, or the error it gave up with. */
export interface StepEntry {
  t: 'step';
  op: number;
  name: string;
  kind: 'step' | 'transaction' | 'signal';
  ok: boolean;
  value?: unknown;
  error?: StoredError;
  /** Attempts it took, this one included. */
  attempts: number;
  startedAtMs: number;
  endedAtMs: number;
}

/** A failed attempt of a step that will be retried. */
export interface AttemptEntry {
  t: 'attempt';
  op: number;
  name: string;
  attempt: number;
  error: StoredError;
  /** When the next attempt may start. */
  retryAtMs: number;
}

/** Written before a step with an effect of unknown outcome runs: the receipt is its `step` entry. */
export interface IntentEntry {
  t: 'intent';
  op: number;
  name: string;
}

/** A durable sleep: when it ends, and whether the run let go of its lease to wait. */
export interface SleepEntry {
  t: 'sleep';
  op: number;
  name: string;
  wakeAtMs: number;
  suspended: boolean;
}

/** A wait for a signal that let go of the lease: until when it waits at most (null: no limit), and when it looks again. */
export interface WaitEntry {
  t: 'wait';
  op: number;
  name: string;
  untilMs: number | null;
  wakeAtMs: number;
}

/** A compensation that finished (or gave up): `op` is the position of the step it undoes. */
export interface UndoEntry {
  t: 'undo';
  op: number;
  name: string;
  ok: boolean;
  error?: StoredError;
}

/** The run gave up (an error, or a cancellation) and starts compensating. */
export interface FailedEntry {
  t: 'failed';
  error: StoredError;
  cancelled: boolean;
}

/** The run is parked until an operator resumes it: too many attempts, a compensation failed, or the code no longer matches. */
export interface ParkedEntry {
  t: 'dead' | 'blocked';
  error: StoredError;
}

/** An operator resumed a parked run. */
export interface ResumedEntry {
  t: 'resumed';
  /** The record's attempts when it was resumed: the attempt limit counts from here. */
  attempts: number;
}

export type Entry =
  | StartEntry
  | StepEntry
  | AttemptEntry
  | IntentEntry
  | SleepEntry
  | WaitEntry
  | UndoEntry
  | FailedEntry
  | ParkedEntry
  | ResumedEntry;

/** An entry as read back, with its place and time. */
export interface ReadEntry {
  seq: number;
  atMs: number;
  entry: Entry;
}

/** Encodes entries for the run whose record key is `key`, sealed with the engine's keys when it has some. */
export class EntryCodec {
  readonly #codec: OutcomeCodec;

  constructor(codec: OutcomeCodec) {
    this.#codec = codec;
  }

  encode(key: string, seq: number, entry: Entry): Uint8Array {
    return this.#codec.encode({ kind: OutcomeKind.value, payload: defaultSerializer.encode(entry) }, `${key}#${seq}`);
  }

  decode(key: string, entry: JournalEntry): ReadEntry {
    const outcome = this.#codec.decode(entry.data, `${key}#${entry.seq}`);
    return { seq: entry.seq, atMs: entry.atMs, entry: defaultSerializer.decode(outcome.payload) as Entry };
  }
}
