import { decideClaim, extendedRecord, isExpired } from '../../core/claim-rules.js';
import { ErrorCode, IdempotencyError } from '../../core/errors.js';
import type {
  ClaimInput,
  ClaimResult,
  CompleteInput,
  ExtendInput,
  IdempotencyRecord,
  ListOptions,
  ListPage,
  Store,
} from '../../core/store.js';
import { storeClosed } from '../shared/errors.js';

export interface MemoryStoreOptions {
  /**
   * Largest number of records kept; past it, a sweep of expired records runs, and if the store
   * is still full the claim fails with `STORE_UNAVAILABLE` rather than evicting live keys
   * (evicting would let a duplicate run twice). Default 100,000.
   */
  maxRecords?: number;
}

/**
 * A store in this process's memory. For tests and single-process programs: records vanish with
 * the process, and two processes never see each other's keys.
 *
 * @example
 * ```ts
 * import { idempotent } from 'idem';
 * import { MemoryStore } from 'idem/memory';
 * const charge = idempotent(chargeCard, { store: new MemoryStore(), key: (req) => req.id });
 * ```
 */
export class MemoryStore implements Store {
  readonly name = 'memory';
  #records = new Map<string, IdempotencyRecord>();
  #maxRecords: number;
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.#maxRecords = options.maxRecords ?? 100_000;
  }

  // Every method is synchronous inside, so each one is atomic on Node's single thread.

  async claim(input: ClaimInput): Promise<ClaimResult> {
    this.#open();
    const current = this.#records.get(input.key);
    const answer = decideClaim(current, input);
    if (answer.claimed) {
      if (current === undefined && this.#records.size >= this.#maxRecords) this.#makeRoom(input.nowMs);
      this.#records.set(input.key, answer.record);
    }
    // Callers get copies, so nothing they do to a record changes the one kept here.
    return { ...answer, record: { ...answer.record } };
  }

  async complete(input: CompleteInput): Promise<boolean> {
    this.#open();
    const current = this.#records.get(input.key);
    if (current?.state !== 'in_progress' || current.token !== input.token) return false;
    current.state = 'completed';
    current.result = Uint8Array.from(input.result);
    current.expiresAtMs = input.expiresAtMs;
    current.updatedAtMs = input.nowMs;
    return true;
  }

  async release(key: string, token: string): Promise<boolean> {
    this.#open();
    const current = this.#records.get(key);
    if (current?.state !== 'in_progress' || current.token !== token) return false;
    this.#records.delete(key);
    return true;
  }

  async extend(input: ExtendInput): Promise<boolean> {
    this.#open();
    const current = this.#records.get(input.key);
    if (current?.state !== 'in_progress' || current.token !== input.token) return false;
    this.#records.set(input.key, extendedRecord(current, input));
    return true;
  }

  async get(key: string, nowMs?: number): Promise<IdempotencyRecord | null> {
    this.#open();
    const current = this.#records.get(key);
    if (current === undefined) return null;
    if (nowMs !== undefined && isExpired(current, nowMs)) return null;
    return { ...current };
  }

  async delete(key: string): Promise<boolean> {
    this.#open();
    return this.#records.delete(key);
  }

  async list(options: ListOptions = {}): Promise<ListPage> {
    this.#open();
    const limit = options.limit ?? 100;
    const keys = [...this.#records.keys()].sort();
    const records: IdempotencyRecord[] = [];
    for (const key of keys) {
      if (options.cursor !== undefined && key <= options.cursor) continue;
      const record = this.#records.get(key);
      if (record === undefined) continue;
      if (options.state !== undefined && record.state !== options.state) continue;
      if (options.nowMs !== undefined && isExpired(record, options.nowMs)) continue;
      if (records.length === limit) return { records, nextCursor: records.at(-1)?.key };
      records.push({ ...record });
    }
    return { records, nextCursor: undefined };
  }

  async sweep(nowMs: number, limit = 1000): Promise<number> {
    this.#open();
    let deleted = 0;
    for (const [key, record] of this.#records) {
      if (deleted >= limit) break;
      if (isExpired(record, nowMs)) {
        this.#records.delete(key);
        deleted += 1;
      }
    }
    return deleted;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #makeRoom(nowMs: number): void {
    for (const [key, record] of this.#records) {
      if (isExpired(record, nowMs)) this.#records.delete(key);
    }
    if (this.#records.size >= this.#maxRecords) {
      throw new IdempotencyError(
        ErrorCode.STORE_UNAVAILABLE,
        `[idem] [memory] the store holds ${this.#maxRecords} live records (maxRecords); raise maxRecords, shorten retention, or use a persistent store.`,
      );
    }
  }

  #open(): void {
    if (this.#closed) throw storeClosed('memory', 'MemoryStore');
  }
}
