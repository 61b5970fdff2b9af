import type { IdempotencyRecord } from './store.js';

/** Default `replayCacheEntries`: records kept at most. */
export const DEFAULT_REPLAY_CACHE_ENTRIES = 10_000;

interface Cached {
  record: IdempotencyRecord;
  /** When this copy stops answering: the record's retention end, or `replayCacheMs` after it was kept. */
  untilMs: number;
}

/**
 * Completed records this process has seen, answering replays without a store call for a short
 * while. A completed record never changes before its retention ends (only a new claim after it
 * ends, or an operator's delete, replaces it), so a copy read or written here answers exactly as
 * the store would, except after a delete: a deleted key keeps replaying here until its copy ends.
 * First in, first out once full: a retry storm on a few keys keeps them, a flood of new keys
 * cycles through.
 * @internal
 */
export class ReplayCache {
  readonly #ms: number;
  readonly #entries: number;
  readonly #records = new Map<string, Cached>();

  constructor(ms: number, entries: number) {
    this.#ms = ms;
    this.#entries = entries;
  }

  /**
   * The completed record of `key` as of `nowMs`, or `undefined` when none is kept (or its copy
   * ended). Each caller gets a result of its own, as from the memory store.
   */
  get(key: string, nowMs: number): IdempotencyRecord | undefined {
    const cached = this.#records.get(key);
    if (cached === undefined) return undefined;
    if (cached.untilMs > nowMs) return withOwnResult(cached.record);
    this.#records.delete(key);
    return undefined;
  }

  /** Keeps `record` (completed, with its result) as seen at `nowMs`. */
  keep(record: IdempotencyRecord, nowMs: number): void {
    const untilMs = Math.min(record.expiresAtMs, nowMs + this.#ms);
    if (untilMs <= nowMs || record.state !== 'completed' || record.result === null) return;
    this.#records.delete(record.key); // kept again: to the back of the line
    // Its own copy of the result: a driver may hand out bytes it reuses later, and whoever passed
    // the record may change it; a copy kept for minutes must stay the stored bytes.
    this.#records.set(record.key, { record: withOwnResult(record), untilMs });
    if (this.#records.size > this.#entries) {
      const oldest = this.#records.keys().next().value as string;
      this.#records.delete(oldest);
    }
  }
}

/** `record` with a copy of its result bytes. */
function withOwnResult(record: IdempotencyRecord): IdempotencyRecord {
  return { ...record, result: record.result === null ? null : new Uint8Array(record.result) };
}
