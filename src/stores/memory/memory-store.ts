import { decideClaim, extendedRecord, isExpired } from '../../core/claim-rules.js';
import { ErrorCode, IdempotencyError } from '../../core/errors.js';
import type {
  AppendInput,
  JournalEntry,
  JournalStore,
  ReopenInput,
  RunListOptions,
  RunPage,
} from '../../core/journal.js';
import { isDueRun, mayAppend, mayReopen, reopenedRecord } from '../../core/journal-rules.js';
import type {
  AdminStore,
  ClaimInput,
  ClaimResult,
  CompleteInput,
  ExtendInput,
  IdempotencyRecord,
  ListOptions,
  ListPage,
} from '../../core/store.js';
import { checkGetManyKeys, checkListLimit, checkSweepLimit, storeClosed } from '../../store-kit/index.js';
import { ExpiryQueue } from './expiry-queue.js';
import { MemoryJournals } from './memory-journals.js';

/** Default `maxRecords`. */
export const DEFAULT_MAX_RECORDS = 100_000;
/** Default `maxBytes`: 256 MiB. */
export const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;
/** What a record costs besides its strings and result: the object, its numbers, the map and queue entries, in bytes. */
const RECORD_OVERHEAD_BYTES = 256;

export interface MemoryStoreOptions {
  /**
   * Largest number of records kept. A claim of a new key past it first drops expired records
   * (soonest first, from a queue ordered by expiry: no scan); if the store is still full, the
   * claim fails with `STORE_UNAVAILABLE` rather than evict a live key, which would let a
   * duplicate run twice. Default 100,000.
   */
  maxRecords?: number;
  /**
   * Largest memory the records may take, in bytes, counted as their keys, fingerprints, tokens,
   * stored results and journal entries plus a fixed 256 bytes per record and 64 per entry (an
   * estimate, not the heap's own count). Enforced as `maxRecords` is, when a new key is claimed.
   * Storing a result or appending an entry is never refused, as its work has run: the total may
   * pass the cap by the results and journals of the records in progress. Default 256 MiB.
   */
  maxBytes?: number;
}

/**
 * A store in this process's memory. For tests and single-process programs: records vanish with
 * the process, and two processes never see each other's keys. It keeps journals for workflows
 * (`JournalStore`): a run's entries live and die with its record.
 *
 * @example
 * ```ts
 * import { idempotent } from 'idem';
 * import { MemoryStore } from 'idem/memory';
 * const charge = idempotent(chargeCard, { store: new MemoryStore(), key: (req) => req.id });
 * ```
 */
export class MemoryStore implements AdminStore, JournalStore {
  readonly name = 'memory';
  #records = new Map<string, Kept>();
  /** The runs' journals; a key has one only while it has a record. */
  readonly #journals = new MemoryJournals();
  /** Records by retention end, to find expired ones without a scan. */
  readonly #expiries = new ExpiryQueue();
  readonly #maxRecords: number;
  readonly #maxBytes: number;
  #bytes = 0;
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.#maxRecords = positiveLimit('maxRecords', options.maxRecords ?? DEFAULT_MAX_RECORDS);
    this.#maxBytes = positiveLimit('maxBytes', options.maxBytes ?? DEFAULT_MAX_BYTES);
  }

  /** Records kept, expired ones not yet dropped included. */
  get size(): number {
    return this.#records.size;
  }

  /** Memory the records take, as counted against `maxBytes`, in bytes. */
  get bytes(): number {
    return this.#bytes;
  }

  // Every method is synchronous inside, so each one is atomic on Node's single thread.

  async claim(input: ClaimInput): Promise<ClaimResult> {
    this.#open();
    const current = this.#records.get(input.key);
    // The rules read only the fields a kept record shares with a record; a claimed record is fresh
    // or taken over (in progress), so it holds no result.
    const answer = decideClaim(current as IdempotencyRecord | undefined, input);
    if (answer.claimed) {
      if (current === undefined) this.#makeRoom(input.nowMs, sizeOf(answer.record));
      // A fresh record replaces an expired one: the old run's journal dies with it.
      else if (!answer.takeover) this.#clearJournal(input.key);
      this.#put(kept(answer.record), current);
    }
    // Callers get copies, so nothing they do to a record changes the one kept here.
    return { ...answer, record: exposed(answer.record) };
  }

  async complete(input: CompleteInput): Promise<boolean> {
    this.#open();
    const current = this.#records.get(input.key);
    if (current?.state !== 'in_progress' || current.token !== input.token) return false;
    // Changed in place: no caller holds a kept record (they get copies), and a completion that
    // allocates nothing but its result leaves the collector less to copy per new key.
    const before = sizeOf(current);
    current.state = 'completed';
    // Kept as a string: a copy (the caller may reuse its buffer) on V8's heap, where a small
    // string costs the collector far less than a buffer of its own outside the heap.
    current.result = packed(input.result);
    current.updatedAtMs = input.nowMs;
    this.#bytes += sizeOf(current) - before;
    this.#retain(current, input.expiresAtMs);
    return true;
  }

  async release(key: string, token: string): Promise<boolean> {
    this.#open();
    const current = this.#records.get(key);
    if (current?.state !== 'in_progress' || current.token !== token) return false;
    this.#remove(key);
    return true;
  }

  async extend(input: ExtendInput): Promise<boolean> {
    this.#open();
    const current = this.#records.get(input.key);
    if (current?.state !== 'in_progress' || current.token !== input.token) return false;
    this.#records.set(input.key, kept(extendedRecord(current as IdempotencyRecord, input)));
    return true;
  }

  async get(key: string, nowMs?: number): Promise<IdempotencyRecord | null> {
    this.#open();
    return this.#read(key, nowMs);
  }

  async getMany(keys: readonly string[], nowMs?: number): Promise<(IdempotencyRecord | null)[]> {
    this.#open();
    return checkGetManyKeys('memory', keys).map((key) => this.#read(key, nowMs));
  }

  async delete(key: string): Promise<boolean> {
    this.#open();
    return this.#remove(key);
  }

  async list(options: ListOptions = {}): Promise<ListPage> {
    this.#open();
    const limit = checkListLimit('memory', options.limit);
    const keys = [...this.#records.keys()].sort();
    const records: IdempotencyRecord[] = [];
    for (const key of keys) {
      if (options.cursor !== undefined && key <= options.cursor) continue;
      const record = this.#records.get(key);
      if (record === undefined) continue;
      if (options.state !== undefined && record.state !== options.state) continue;
      if (options.nowMs !== undefined && isExpired(record, options.nowMs)) continue;
      if (records.length === limit) return { records, nextCursor: records.at(-1)?.key };
      records.push(exposed(record));
    }
    return { records, nextCursor: undefined };
  }

  async sweep(nowMs: number, limit?: number): Promise<number> {
    this.#open();
    return this.#dropExpired(nowMs, checkSweepLimit('memory', limit));
  }

  async append(input: AppendInput): Promise<boolean> {
    this.#open();
    if (!mayAppend(this.#records.get(input.key) as IdempotencyRecord | undefined, input)) return false;
    // Seq 0 starts the journal afresh; any other seq must be free.
    if (input.seq === 0) this.#clearJournal(input.key);
    else if (this.#journals.has(input.key, input.seq)) return false;
    const bytes = this.#journals.add(input.key, { seq: input.seq, data: input.data, atMs: input.nowMs });
    this.#bytes += bytes;
    return true;
  }

  async entries(key: string): Promise<JournalEntry[]> {
    this.#open();
    return this.#journals.entries(key);
  }

  async reopen(input: ReopenInput): Promise<boolean> {
    this.#open();
    const current = this.#records.get(input.key);
    if (current === undefined || !mayReopen(current as IdempotencyRecord, input)) return false;
    this.#clearJournal(input.key);
    this.#put(kept(reopenedRecord(current as IdempotencyRecord, input)), current);
    return true;
  }

  async runs(options: RunListOptions = {}): Promise<RunPage> {
    this.#open();
    const limit = checkListLimit('memory', options.limit, 'runs');
    const { cursor, dueBy } = options;
    const keys: string[] = [];
    for (const key of this.#journals.heads()) {
      if (cursor !== undefined && key <= cursor) continue;
      const record = this.#records.get(key);
      if (record === undefined || (dueBy !== undefined && !isDueRun(record as IdempotencyRecord, dueBy))) continue;
      if (keys.length === limit) return { keys, nextCursor: keys.at(-1) };
      keys.push(key);
    }
    return { keys, nextCursor: undefined };
  }

  /** Resolves while the store is open: there is nothing to reach. `STORE_CLOSED` after `close()`. */
  async ping(): Promise<void> {
    this.#open();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /**
   * Keeps `record` in place of `previous` (the record it replaces, if any), counting the difference
   * in size and queueing its retention end. A record's journal is counted as it grows and shrinks,
   * so no size per key is kept: the sizes of what is replaced or removed are taken from it.
   */
  #put(record: Kept, previous: Kept | undefined): void {
    this.#bytes += sizeOf(record) - (previous === undefined ? 0 : sizeOf(previous));
    this.#records.set(record.key, record);
    this.#queueExpiry(record.key, record.expiresAtMs, previous?.expiresAtMs);
  }

  /** Moves the retention end of `record` to `expiresAtMs`, in place. */
  #retain(record: Kept, expiresAtMs: number): void {
    this.#queueExpiry(record.key, expiresAtMs, record.expiresAtMs);
    record.expiresAtMs = expiresAtMs;
  }

  /**
   * Queues `key` for its new retention end `endMs` (`previousEndMs`: the end it had, if any). The
   * expiry queue holds each key at its retention end or earlier: a later end is not queued again
   * (a completion would queue every new key twice); the key comes out of the queue early, is found
   * alive, and is queued then.
   */
  #queueExpiry(key: string, endMs: number, previousEndMs: number | undefined): void {
    if (previousEndMs === undefined || endMs < previousEndMs) this.#expiries.schedule(key, endMs);
  }

  /** Deletes the record of `key` and its journal, uncounting both. */
  #remove(key: string): boolean {
    const record = this.#records.get(key);
    if (record === undefined) return false;
    this.#records.delete(key);
    this.#bytes -= sizeOf(record) + this.#journals.clear(key);
    this.#expiries.unschedule(key);
    return true;
  }

  /** Removes the journal of `key` (whose record stays), uncounting it. */
  #clearJournal(key: string): void {
    this.#bytes -= this.#journals.clear(key);
  }

  /** Drops up to `limit` records expired at `nowMs`, soonest first; returns how many. */
  #dropExpired(nowMs: number, limit: number): number {
    let dropped = 0;
    while (dropped < limit) {
      const key = this.#expiries.popDue(nowMs);
      if (key === undefined) break;
      const record = this.#records.get(key);
      if (record === undefined) continue;
      if (isExpired(record, nowMs)) {
        this.#remove(key);
        dropped += 1;
      } else {
        // Its retention was raised after it was queued (an extension): queue it again.
        this.#expiries.schedule(key, record.expiresAtMs);
      }
    }
    return dropped;
  }

  /** Before a new key's claim of `bytes`: drops expired records if the store is full, and refuses if it still is. */
  #makeRoom(nowMs: number, bytes: number): void {
    if (!this.#full(bytes)) return;
    this.#dropExpired(nowMs, Number.POSITIVE_INFINITY);
    if (!this.#full(bytes)) return;
    const which =
      this.#records.size >= this.#maxRecords
        ? `${this.#records.size} live records (maxRecords ${this.#maxRecords})`
        : `${megabytes(this.#bytes)} of live records (maxBytes ${megabytes(this.#maxBytes)})`;
    throw new IdempotencyError(
      ErrorCode.STORE_UNAVAILABLE,
      `[idem] [memory] the memory store is full: it holds ${which}, none of them expired, and it never evicts a live key (a retry would run twice). Nothing was run. Raise maxRecords or maxBytes, shorten the retention, or use a persistent store (SQLite, PostgreSQL, Redis, MySQL).`,
    );
  }

  #full(bytes: number): boolean {
    return this.#records.size >= this.#maxRecords || this.#bytes + bytes > this.#maxBytes;
  }

  #read(key: string, nowMs: number | undefined): IdempotencyRecord | null {
    const current = this.#records.get(key);
    if (current === undefined) return null;
    if (nowMs !== undefined && isExpired(current, nowMs)) return null;
    return exposed(current);
  }

  #open(): void {
    if (this.#closed) throw storeClosed('memory', 'MemoryStore');
  }
}

/**
 * A record as the store keeps it: the result bytes packed into a string, one character (Latin-1,
 * U+0000 to U+00FF) per byte. Callers only ever see records (`exposed`).
 */
type Kept = Omit<IdempotencyRecord, 'result'> & { result: string | null };

/** `bytes` as a string of one character per byte: its own copy, on V8's heap. */
function packed(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** `record` as kept: the rules hand back in-progress records, whose result is null (packed if not). */
function kept(record: IdempotencyRecord): Kept {
  const { result } = record;
  return result === null ? (record as Kept) : { ...record, result: packed(result) };
}

/** A caller's copy of `kept`, its result as new bytes of the caller's own. */
function exposed(kept: Kept | IdempotencyRecord): IdempotencyRecord {
  const { result } = kept;
  return { ...kept, result: typeof result === 'string' ? Buffer.from(result, 'latin1') : result };
}

/** What a record counts against `maxBytes`: its strings (two bytes a character at most), its result, and a fixed overhead. */
function sizeOf(record: Kept | IdempotencyRecord): number {
  const text = record.key.length + record.fingerprint.length + record.token.length;
  const { result } = record;
  const resultBytes = result === null ? 0 : typeof result === 'string' ? result.length : result.byteLength;
  return RECORD_OVERHEAD_BYTES + 2 * text + resultBytes;
}

function megabytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
  return bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} bytes`;
}

function positiveLimit(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      `[idem] [memory] ${name} must be a whole number above 0, got ${value}.`,
    );
  }
  return value;
}
