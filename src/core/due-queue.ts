/** An entry of a `DueQueue`: when it falls due, and whether it is settled (no longer waiting). */
export interface DueEntry {
  /** When the entry falls due, in `performance.now()` ms. */
  dueMs: number;
  /** Set by the queue: true once the entry was settled or taken out as due. */
  settled: boolean;
}

/**
 * Entries in the order they fall due, for timers shared by many calls (store-call deadlines,
 * heartbeats) whose every entry waits the same time: each one pushed is due no earlier than the one
 * before, so a first-in first-out array is already sorted. It replaces a Set or Map keyed by
 * objects, whose every new key costs V8 an identity hash; here an entry costs an array slot.
 *
 * A settled entry stays in its slot until it reaches the front (lazy deletion); entries that
 * settle in the order they came, as most do, leave at once. Nothing stays longer than it waits.
 * @internal
 */
export class DueQueue<E extends DueEntry> {
  #items: (E | undefined)[] = [];
  #head = 0;
  #waiting = 0;

  /** Entries waiting: pushed, and neither settled nor taken out as due. */
  get size(): number {
    return this.#waiting;
  }

  /** Adds `entry`, due at its `dueMs`: no earlier than that of any entry still queued. */
  push(entry: E): void {
    entry.settled = false;
    this.#items.push(entry);
    this.#waiting += 1;
  }

  /** Stops `entry` waiting; quiet if it no longer was. */
  settle(entry: E): void {
    if (entry.settled) return;
    entry.settled = true;
    this.#waiting -= 1;
    this.#trim();
  }

  /** The first waiting entry due at `nowMs`, taken out and settled; `undefined` when none is due. */
  takeDue(nowMs: number): E | undefined {
    const first = this.#items[this.#head];
    if (first === undefined || first.dueMs > nowMs) return undefined;
    this.settle(first);
    return first;
  }

  /** Drops settled entries from the front, so the front is waiting (or the queue empty). */
  #trim(): void {
    const items = this.#items;
    while (this.#head < items.length && (items[this.#head] as E).settled) {
      items[this.#head] = undefined;
      this.#head += 1;
    }
    if (this.#head === items.length) {
      items.length = 0;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= items.length) {
      this.#items = items.slice(this.#head);
      this.#head = 0;
    }
  }
}
