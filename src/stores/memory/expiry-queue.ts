/**
 * Keys by the time they are due, soonest first: a binary min-heap, so finding what expired costs
 * O(log n) per key found, never a scan of every record.
 *
 * A key has at most one live time (`schedule` again replaces it). The heap keeps replaced and
 * unscheduled entries until they reach the top (lazy deletion), and is rebuilt from the live
 * times once stale entries outnumber them, so its size stays within a small factor of the keys.
 */
export class ExpiryQueue {
  /** The heap, as parallel arrays: `#times[i]` is when `#keys[i]` is due. */
  #times: number[] = [];
  #keys: string[] = [];
  /** Each key's live time; a heap entry with another time (or for no key here) is stale. */
  readonly #live = new Map<string, number>();

  /** Keys scheduled. */
  get size(): number {
    return this.#live.size;
  }

  /** Makes `key` due at `atMs` (ms since epoch), replacing any earlier schedule of it. */
  schedule(key: string, atMs: number): void {
    if (this.#live.get(key) === atMs) return;
    this.#live.set(key, atMs);
    this.#push(atMs, key);
    if (this.#times.length > 2 * this.#live.size + 1024) this.#rebuild();
  }

  /** Forgets `key`: it will not come out of `popDue`. */
  unschedule(key: string): void {
    this.#live.delete(key);
  }

  /** The soonest key due at or before `nowMs`, taken off the queue; `undefined` when none is. */
  popDue(nowMs: number): string | undefined {
    while (this.#times.length > 0 && (this.#times[0] as number) <= nowMs) {
      const atMs = this.#times[0] as number;
      const key = this.#pop();
      if (this.#live.get(key) !== atMs) continue; // replaced or unscheduled since it was pushed
      this.#live.delete(key);
      return key;
    }
    return undefined;
  }

  /** Forgets every key. */
  clear(): void {
    this.#times = [];
    this.#keys = [];
    this.#live.clear();
  }

  #push(atMs: number, key: string): void {
    this.#times.push(atMs);
    this.#keys.push(key);
    this.#up(this.#times.length - 1);
  }

  /** Removes the top entry and returns its key (the heap is not empty). */
  #pop(): string {
    const key = this.#keys[0] as string;
    const lastTime = this.#times.pop() as number;
    const lastKey = this.#keys.pop() as string;
    if (this.#times.length > 0) {
      this.#times[0] = lastTime;
      this.#keys[0] = lastKey;
      this.#down(0);
    }
    return key;
  }

  #rebuild(): void {
    this.#times = [];
    this.#keys = [];
    for (const [key, atMs] of this.#live) {
      this.#times.push(atMs);
      this.#keys.push(key);
    }
    for (let i = (this.#times.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }

  #up(index: number): void {
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((this.#times[parent] as number) <= (this.#times[i] as number)) return;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #down(index: number): void {
    const length = this.#times.length;
    let i = index;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let least = i;
      if (left < length && (this.#times[left] as number) < (this.#times[least] as number)) least = left;
      if (right < length && (this.#times[right] as number) < (this.#times[least] as number)) least = right;
      if (least === i) return;
      this.#swap(i, least);
      i = least;
    }
  }

  #swap(a: number, b: number): void {
    const time = this.#times[a] as number;
    this.#times[a] = this.#times[b] as number;
    this.#times[b] = time;
    const key = this.#keys[a] as string;
    this.#keys[a] = this.#keys[b] as string;
    this.#keys[b] = key;
  }
}
