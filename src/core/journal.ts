/**
 * The journal contract: what a store adds so that durable workflows can run on it. A workflow run
 * is an ordinary record (its key is the hashed workflow id; claim, extend, complete work as for any
 * key), plus a journal: entries appended in order under the run's lease, each fenced by the
 * holder's token, so a stale holder can never write into a run another worker took over. A step
 * costs one `append`.
 *
 * The rules, on top of the store contract's (time, text, results, atomicity, errors, close):
 *
 * - **Entries.** `seq` is a whole number from 0 up; `data` is opaque bytes (the engine encodes
 *   and may seal them), 0 bytes up to the store's `maxResultBytes` or the engine's limit, kept
 *   byte for byte. `entries(key)` returns every entry of the key in `seq` order, each with the
 *   `atMs` (the `nowMs` of its append).
 * - **Fencing.** `append` writes only when the record `key` exists, is `in_progress`, holds
 *   `token` and has not expired (`expiresAtMs > nowMs`), and no entry of the key has that `seq`.
 *   Otherwise it changes nothing and returns `false`. Check and write are one atomic step.
 * - **A new journal.** Appending `seq` 0 starts the journal afresh: every entry the key had (left
 *   from an earlier run whose record expired) is removed in the same atomic step. `reopen` also
 *   removes them.
 * - **Life.** Entries live and die with their record: `delete`, `release` and `sweep` remove the
 *   record's entries with it, and a store with its own expiry (a TTL) keeps entries at least as
 *   long as the record. Entries of a key without a record are never returned by `runs`.
 * - **Runs.** `runs` pages through the keys that have an entry 0 and a record, in key order on SQL
 *   and memory stores (a store that scans may return a key on two pages). With `dueBy`, only runs
 *   whose record is `in_progress` with `leaseExpiresAtMs <= dueBy` and `expiresAtMs > dueBy`:
 *   the runs a recovery worker may take over (their holder died, or their sleep is due).
 *   `limit` is a whole number from 1 to `StoreLimits.maxListLimit` (`INVALID_OPTIONS` otherwise).
 */
import type { ClaimInput, Store } from './store.js';

/** One entry of a run's journal. */
export interface JournalEntry {
  /** Its position, from 0. */
  seq: number;
  /** The bytes appended, as the engine encoded them. */
  data: Uint8Array;
  /** When it was appended: the `nowMs` of the `append` (ms since epoch). */
  atMs: number;
}

export interface AppendInput {
  /** The run record's key. */
  key: string;
  /** The token the appender holds; the append is refused unless the record still has it. */
  token: string;
  /** The entry's position: a whole number from 0 up; 0 starts a new journal. */
  seq: number;
  data: Uint8Array;
  nowMs: number;
}

/**
 * Turns a `completed` record back into an `in_progress` one with a fresh lease, to run the
 * workflow again from the start: only when it is `completed`, holds `token` and has not expired.
 */
export interface ReopenInput extends Omit<ClaimInput, 'fingerprint'> {
  /** The token of the completed record (the last holder's). */
  expectedToken: string;
}

export interface RunListOptions {
  /** Only runs a worker may take over by then: `in_progress`, lease ended, not expired (ms since epoch). */
  dueBy?: number;
  /** The most keys on the page: 1 to `StoreLimits.maxListLimit`. Default `StoreLimits.defaultListLimit`. */
  limit?: number;
  /** Opaque cursor from the previous page's `nextCursor`. */
  cursor?: string;
}

export interface RunPage {
  /** Run record keys, at most `limit`. */
  keys: string[];
  /** Pass as `cursor` for the next page; `undefined` on the last page only. */
  nextCursor: string | undefined;
}

/** A store that keeps journals: what durable workflows (`idem/workflow`) run on. */
export interface JournalStore extends Store {
  /**
   * Appends an entry under the run's lease (see the fencing rule). True when written; false when
   * the token no longer holds, the record is gone or completed, or the `seq` is taken.
   */
  append(input: AppendInput): Promise<boolean>;

  /** Every entry of `key`, in `seq` order; empty when there are none. */
  entries(key: string): Promise<JournalEntry[]>;

  /**
   * If the record is `completed`, holds `expectedToken` and has not expired (`expiresAtMs >
   * nowMs`): makes it `in_progress` with `token`, the new lease and retention ends, `result`
   * null, `attempts` + 1, `updatedAtMs` now (`createdAtMs` and `fingerprint` kept), and removes
   * its journal, in one atomic step. True when done; false, and nothing changed, otherwise.
   */
  reopen(input: ReopenInput): Promise<boolean>;

  /** Pages through runs (see the runs rule); with `dueBy`, the ones a worker may take over. */
  runs(options?: RunListOptions): Promise<RunPage>;
}

/** True when `store` keeps journals (`append`, `entries`, `reopen`, `runs`). */
export function isJournalStore(store: Store): store is JournalStore {
  const candidate = store as Partial<JournalStore>;
  return (
    typeof candidate.append === 'function' &&
    typeof candidate.entries === 'function' &&
    typeof candidate.reopen === 'function' &&
    typeof candidate.runs === 'function'
  );
}
