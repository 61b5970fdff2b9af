/**
 * The store contract. A store keeps records atomically and compares what it is told to compare;
 * the engine owns everything else (hashing, fingerprints, expiry arithmetic, the clock).
 *
 * Times are milliseconds since the epoch, always passed in by the caller as `nowMs`, so every
 * store judges expiry by the same clock and tests can move time without fake timers. Hosts that
 * share one store need synchronised clocks (NTP); the lease length absorbs small skew.
 */

/** `in_progress`: a holder has the lease and is running the work. `completed`: the result is stored. */
export type RecordState = 'in_progress' | 'completed';

export interface IdempotencyRecord {
  /** The store key: a hash of namespace, scope and the caller's key. Opaque to stores. */
  key: string;
  /** Hash of the canonical request or arguments. Compared by the store on takeover only. */
  fingerprint: string;
  state: RecordState;
  /** Fencing token of the current lease holder; changes on every claim and takeover. */
  token: string;
  /** When an `in_progress` record may be taken over by another caller (ms since epoch). */
  leaseExpiresAtMs: number;
  /** When the record may be deleted; after this it is treated as absent (ms since epoch). */
  expiresAtMs: number;
  /** The stored outcome, as the engine encoded it; `null` while in progress. */
  result: Uint8Array | null;
  /** When the key was first claimed in this record's life (ms since epoch). */
  createdAtMs: number;
  /** When the record last changed: claim, takeover, extension or completion (ms since epoch). */
  updatedAtMs: number;
  /** How many times the key was claimed: 1 for the first claim, +1 on every takeover. */
  attempts: number;
}

export interface ClaimInput {
  key: string;
  fingerprint: string;
  /** The fresh token the claimant will hold if it wins. */
  token: string;
  nowMs: number;
  /** Lease end if the claim wins (ms since epoch). */
  leaseExpiresAtMs: number;
  /** Retention end if the claim wins (ms since epoch). */
  expiresAtMs: number;
}

/**
 * The answer to a claim. `claimed: true` means the caller now holds the lease with its token;
 * `takeover` says it replaced an in-progress record whose lease had ended. `claimed: false`
 * returns the record as it stands, and the engine decides replay, in-progress or mismatch.
 */
export type ClaimResult =
  | { claimed: true; takeover: boolean; record: IdempotencyRecord }
  | { claimed: false; record: IdempotencyRecord };

export interface CompleteInput {
  key: string;
  token: string;
  result: Uint8Array;
  nowMs: number;
  /** New retention end, counted from completion (ms since epoch). */
  expiresAtMs: number;
}

export interface ExtendInput {
  key: string;
  token: string;
  nowMs: number;
  /** The new lease end (ms since epoch). */
  leaseExpiresAtMs: number;
  /**
   * The retention end the record must reach at least (ms since epoch). The store keeps the later
   * of this and the record's own `expiresAtMs`: an extension never shortens retention. The engine
   * passes `nowMs + retentionMs`, so a record whose holder keeps its lease alive (the heartbeat)
   * never expires under it, however long the work runs.
   */
  expiresAtMs: number;
}

export interface ListOptions {
  /** Only records in this state. Default: both. */
  state?: RecordState;
  /** At most this many records. Default 100. */
  limit?: number;
  /** Opaque cursor from the previous page's `nextCursor`. */
  cursor?: string;
  /** Records that expired before `nowMs` are left out when given. */
  nowMs?: number;
}

export interface ListPage {
  records: IdempotencyRecord[];
  /** Pass as `cursor` to get the next page; `undefined` on the last page. */
  nextCursor: string | undefined;
}

export interface Store {
  /** Short name used in error messages and metrics: `memory`, `sqlite`, `postgres`... */
  readonly name: string;

  /**
   * Atomically claims `key`. Exactly one of many concurrent callers can win. Wins when:
   * - there is no record, or its `expiresAtMs <= nowMs` (it is replaced by a fresh one,
   *   `attempts` 1, `takeover` false);
   * - the record is `in_progress`, its `leaseExpiresAtMs <= nowMs` and its fingerprint equals
   *   `fingerprint` (takeover: new token and lease, `attempts` + 1, `createdAtMs` kept).
   * Otherwise returns the current record unchanged.
   */
  claim(input: ClaimInput): Promise<ClaimResult>;

  /**
   * Stores the result and marks the record `completed`, only if it is `in_progress` with
   * `token`. Returns false (and changes nothing) when the token no longer holds.
   */
  complete(input: CompleteInput): Promise<boolean>;

  /** Deletes the record only if it is `in_progress` with `token`. False when the token no longer holds. */
  release(key: string, token: string): Promise<boolean>;

  /**
   * Only if the record is `in_progress` with `token`: moves the lease end to `leaseExpiresAtMs`
   * and raises the retention end to `expiresAtMs` when that is later (see `extendedRecord`).
   * False, and nothing changed, otherwise. Without the retention part, work kept alive past
   * retention would lose its record: the key would count as absent and a second caller would run it.
   */
  extend(input: ExtendInput): Promise<boolean>;

  /** The record, or `null` if there is none or (when `nowMs` is given) it has expired. */
  get(key: string, nowMs?: number): Promise<IdempotencyRecord | null>;

  /** Deletes the record whatever its state. True if one was there. For operators. */
  delete(key: string): Promise<boolean>;

  /**
   * Pages through records, for operators and recovery. SQL and memory stores page in key order;
   * a store that scans (Redis) may return a record on two pages, never skips one that exists for
   * the whole listing.
   */
  list(options?: ListOptions): Promise<ListPage>;

  /** Deletes up to `limit` (default 1000) records with `expiresAtMs <= nowMs`; returns how many. */
  sweep(nowMs: number, limit?: number): Promise<number>;

  /**
   * Readiness check, optional: connects if needed (creating the table on stores that do so on
   * first use) and runs one trivial command. Resolves when the store can serve; rejects with
   * `STORE_UNAVAILABLE` (the server cannot be reached), `STORE_MISCONFIGURED` (it refused the
   * configuration: user, password, database, permissions) or `STORE_CLOSED`. Call it at start-up
   * to fail early with the real reason, or from a readiness probe.
   */
  ping?(): Promise<void>;

  /** Releases connections the store opened itself. Safe to call more than once. */
  close(): Promise<void>;
}
