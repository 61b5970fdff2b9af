/**
 * The store contract. A store keeps records atomically and compares what it is told to compare;
 * the engine owns everything else (hashing, fingerprints, expiry arithmetic, the clock).
 *
 * Two interfaces: `Store` is the hot path every face calls on every request (claim, complete,
 * release, extend, get, close, optional ping); `AdminStore` adds what operators and the `idem`
 * CLI call (delete, list, optional sweep). Every built-in store is an `AdminStore`.
 *
 * The rules below are the whole contract: `runStoreConformance` from `idem/testing` checks them
 * against your real server (each one a test can observe) and checks nothing else.
 *
 * - **Time.** Times are integer milliseconds since the epoch, always passed in by the caller as
 *   `nowMs`, so every store judges expiry by the same clock and tests can move time without fake
 *   timers. Keep them exactly (a 64-bit integer, or a decimal string: not a float in seconds).
 *   Hosts that share one store need synchronised clocks (NTP); the lease length absorbs small skew.
 * - **Text.** `key`, `fingerprint` and `token` are well-formed Unicode strings without NUL
 *   (U+0000), of 1 to 255 UTF-8 bytes (`StoreLimits`); the engine refuses any other before it
 *   reaches a store. Keep them byte for byte: `abc` and `ABC` are two keys, `{a}` and `é` are
 *   keys like any other, and none is truncated or folded.
 *   In practice Idem's faces send 43-character base64url SHA-256 hashes as key and fingerprint,
 *   and the engine sends a random UUID (36 characters) as token.
 * - **Results.** `result` is opaque bytes, every byte value, from 0 bytes up to the store's
 *   `maxResultBytes` (or, when it declares none, whatever the engine's `maxResultBytes` allows:
 *   1 MiB by default). Give back exactly the bytes stored.
 * - **Atomicity.** Each operation is atomic on its own, against concurrent calls from this
 *   process and from other processes and machines sharing the backend.
 * - **Answers are not errors.** A lost claim is `claimed: false`; a token that no longer holds is
 *   `false`. Throw only when the operation could not be done.
 * - **Errors.** A store may throw anything when its backend fails: the engine turns any error
 *   that is not an `IdempotencyError` into `STORE_UNAVAILABLE` (the original kept as `cause`),
 *   and passes an `IdempotencyError` through unchanged. So throw Idem's errors only when you have
 *   something better to say (`STORE_MISCONFIGURED` for a wrong password, `INVALID_OPTIONS` for a
 *   bad `list` limit); `idem/store-kit`'s `StoreOperations` does this mapping for you.
 * - **Close.** After `close()` every operation, `ping` included, rejects with `STORE_CLOSED`.
 *   `close()` may be called more than once.
 * - **Timeouts.** The engine stops waiting for a call after its `storeTimeoutMs` (5 s); the
 *   operation may still take effect afterwards, which the lease and token rules make harmless.
 */

/** `in_progress`: a holder has the lease and is running the work. `completed`: the result is stored. */
export type RecordState = 'in_progress' | 'completed';

/** The sizes the contract fixes, in one place. */
export const StoreLimits = {
  /** Longest `key` the engine passes to a store, in UTF-8 bytes. */
  keyBytes: 255,
  /** Longest `fingerprint` the engine passes to a store, in UTF-8 bytes. */
  fingerprintBytes: 255,
  /** Longest `token` a store must keep, in UTF-8 bytes (the engine's are 36-character UUIDs). */
  tokenBytes: 255,
  /** Records on a `list` page when `limit` is not given. */
  defaultListLimit: 100,
  /** Largest `limit` a `list` call may ask for. */
  maxListLimit: 1000,
  /** Records a `sweep` deletes at most when `limit` is not given. */
  defaultSweepLimit: 1000,
  /** Most keys one `getMany` call may ask for (duplicates counted); `getMany` from `idem/store-kit` splits longer lists. */
  getManyKeys: 1000,
} as const;

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
  /** The store key, 1 to `StoreLimits.keyBytes` UTF-8 bytes. */
  key: string;
  /** The fingerprint of what is asked, 1 to `StoreLimits.fingerprintBytes` UTF-8 bytes. */
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
  /** The encoded outcome, at most the store's `maxResultBytes` (see the contract's results rule). */
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

/** The hot path: what the engine calls for every key. */
export interface Store {
  /** Short name used in error messages and metrics: `memory`, `sqlite`, `postgres`... */
  readonly name: string;

  /**
   * The largest `result` this store can keep, in bytes, when that is less than the engine may
   * send (DynamoDB keeps items of at most 400 KB). The engine then stores outcomes of at most
   * `min(its own maxResultBytes, this)` and records larger ones as "too large", as it does for
   * its own limit. A positive whole number. Default: none; the store keeps any size the engine
   * is configured for (1 MiB unless the application raises `maxResultBytes`).
   */
  readonly maxResultBytes?: number;

  /**
   * Atomically claims `key`. Exactly one of many concurrent callers can win. Wins when:
   * - there is no record, or its `expiresAtMs <= nowMs` (it is replaced by a fresh one,
   *   `attempts` 1, `takeover` false);
   * - the record is `in_progress`, its `leaseExpiresAtMs <= nowMs` and its fingerprint equals
   *   `fingerprint` (takeover: new token and lease, `attempts` + 1, `createdAtMs` kept).
   * Otherwise returns the current record unchanged. The records to write and return are those of
   * `decideClaim` (`idem`): a store that decides in JavaScript calls it.
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

  /**
   * The record, or `null` if there is none or (when `nowMs` is given) it has expired
   * (`expiresAtMs <= nowMs`). Without `nowMs`, an expired record the store still holds is returned.
   */
  get(key: string, nowMs?: number): Promise<IdempotencyRecord | null>;

  /**
   * Batch read, optional: the answer `get(key, nowMs)` would give for each of `keys`, in the same
   * order (`result[i]` answers `keys[i]`): the record, or `null` when there is none or, when
   * `nowMs` is given, it has expired (`expiresAtMs <= nowMs`), exactly as `get` judges expiry.
   * Duplicates are allowed and each gets its own answer; an empty list answers `[]`. At most
   * `StoreLimits.getManyKeys` (1000) keys per call: a longer list, or anything but an array, is
   * refused with `INVALID_OPTIONS` (`checkGetManyKeys` from `idem/store-kit`). The answers need
   * not come from one snapshot: each is what `get` could have answered during the call.
   * For callers that read many finished keys at once (the backfill runner skipping done items).
   * Default: none; call `getMany` from `idem/store-kit`, which uses this when present and falls
   * back to `get` for each key otherwise.
   */
  getMany?(keys: readonly string[], nowMs?: number): Promise<(IdempotencyRecord | null)[]>;

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

export interface ListOptions {
  /** Only records in this state. Default: both. */
  state?: RecordState;
  /**
   * The most records on the page: a whole number from 1 to `StoreLimits.maxListLimit` (1000).
   * Anything else (0, negative, fractional, larger) is refused with `INVALID_OPTIONS`.
   * Default `StoreLimits.defaultListLimit` (100).
   */
  limit?: number;
  /** Opaque cursor from the previous page's `nextCursor`. Default: the first page. */
  cursor?: string;
  /** Leaves out records that expired by then (`expiresAtMs <= nowMs`), in ms. Default: none left out. */
  nowMs?: number;
}

export interface ListPage {
  /** At most `limit` records, each whole (its `result` included). */
  records: IdempotencyRecord[];
  /**
   * Pass as `cursor` to get the next page. `undefined` on the last page, and only there: a page
   * with a cursor holds exactly `limit` records, and a store hands out a cursor only when it has
   * seen a further record (so the listing never ends on an empty page, unless records were
   * deleted between the calls).
   */
  nextCursor: string | undefined;
}

/** The operator's calls, on top of the hot path: look at records, delete them, sweep expired ones. */
export interface AdminStore extends Store {
  /** Deletes the record whatever its state. True if one was there. */
  delete(key: string): Promise<boolean>;

  /**
   * Pages through records, for operators and recovery (see `ListOptions` and `ListPage` for the
   * rules on `limit` and cursors). Every record that exists for the whole listing and matches
   * the filters is returned at least once; SQL and memory stores page in key order, exactly once;
   * a store that scans (Redis) may return a record on two pages.
   */
  list(options?: ListOptions): Promise<ListPage>;

  /**
   * Deletes up to `limit` records with `expiresAtMs <= nowMs`, and no other; returns how many.
   * `limit` is a whole number of at least 1 (`INVALID_OPTIONS` otherwise); default
   * `StoreLimits.defaultSweepLimit` (1000). Optional: a store whose backend drops expired
   * records by itself (a TTL) may leave it out; expired records are treated as absent anyway.
   */
  sweep?(nowMs: number, limit?: number): Promise<number>;
}

/** True when `store` has the operator's calls (`delete` and `list`; `sweep` stays optional). */
export function isAdminStore(store: Store): store is AdminStore {
  const candidate = store as Partial<AdminStore>;
  return typeof candidate.delete === 'function' && typeof candidate.list === 'function';
}
