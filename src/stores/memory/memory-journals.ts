import type { JournalEntry } from '../../core/journal.js';

/** What an entry costs besides its data: the object, its numbers and its map entry, in bytes. */
const ENTRY_OVERHEAD_BYTES = 64;

/**
 * The journals of the memory store: each key's entries by `seq`, and the bytes they count against
 * `maxBytes`. It only keeps them; the store decides (the fencing rule) and calls it inside the
 * same synchronous step, so each of its operations stays atomic.
 */
export class MemoryJournals {
  readonly #journals = new Map<string, Map<number, JournalEntry>>();
  readonly #bytes = new Map<string, number>();

  /** What the journal of `key` counts against `maxBytes`, in bytes; 0 without one. */
  bytesOf(key: string): number {
    return this.#bytes.get(key) ?? 0;
  }

  /** Whether `key` has an entry `seq`. */
  has(key: string, seq: number): boolean {
    return this.#journals.get(key)?.has(seq) ?? false;
  }

  /** Keeps a copy of `entry` under `key` (its `seq` is free); returns the bytes it counts. */
  add(key: string, entry: JournalEntry): number {
    let journal = this.#journals.get(key);
    if (journal === undefined) {
      journal = new Map();
      this.#journals.set(key, journal);
    }
    // A copy, so nothing the caller does to its array changes the entry kept here.
    journal.set(entry.seq, { seq: entry.seq, data: Uint8Array.from(entry.data), atMs: entry.atMs });
    const bytes = ENTRY_OVERHEAD_BYTES + entry.data.byteLength;
    this.#bytes.set(key, this.bytesOf(key) + bytes);
    return bytes;
  }

  /** Removes every entry of `key`; returns the bytes they counted. */
  clear(key: string): number {
    const bytes = this.bytesOf(key);
    this.#journals.delete(key);
    this.#bytes.delete(key);
    return bytes;
  }

  /** Copies of the entries of `key`, in `seq` order. */
  entries(key: string): JournalEntry[] {
    const journal = this.#journals.get(key);
    if (journal === undefined) return [];
    return [...journal.values()]
      .sort((a, b) => a.seq - b.seq)
      .map((entry) => ({ seq: entry.seq, data: Uint8Array.from(entry.data), atMs: entry.atMs }));
  }

  /** The keys whose journal has an entry 0, in key order. */
  heads(): string[] {
    const keys: string[] = [];
    for (const [key, journal] of this.#journals) if (journal.has(0)) keys.push(key);
    return keys.sort();
  }
}
