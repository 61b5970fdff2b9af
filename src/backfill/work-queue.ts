/**
 * The items between the reader and the workers: a bounded queue of items to claim now, and items
 * put aside until a time (held by another runner's lease). Workers `take`, and say `finished`
 * when done with what they took, so that the queue knows when nothing more can come.
 */
export class WorkQueue<T> {
  readonly #capacity: number;
  readonly #ready: T[] = [];
  /** Put aside until `dueAtMs` (ms since epoch), in no particular order: few, and scanned when due. */
  readonly #later: { task: T; dueAtMs: number }[] = [];
  /** Tasks taken and not finished: while any is, it may put something aside. */
  #busy = 0;
  #closed = false;
  #stopped = false;
  #wake: (() => void) | undefined;
  #changed: Promise<void> | undefined;

  /** @param capacity how many ready items `put` lets wait before it waits itself. */
  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Items put aside until later. */
  get waiting(): number {
    return this.#later.length;
  }

  /** Adds an item to claim now; waits while `capacity` items are waiting already. */
  async put(task: T): Promise<void> {
    while (this.#ready.length >= this.#capacity && !this.#stopped) await this.#change();
    if (this.#stopped) return;
    this.#ready.push(task);
    this.#notify();
  }

  /** Puts an item aside until `dueAtMs` (ms since epoch); false when the queue was stopped: the item is dropped. */
  defer(task: T, dueAtMs: number): boolean {
    if (this.#stopped) return false;
    this.#later.push({ task, dueAtMs });
    this.#notify();
    return true;
  }

  /** No more `put`: once every item is taken and finished, `take` gives `undefined`. */
  close(): void {
    this.#closed = true;
    this.#notify();
  }

  /** Drops what waits and takes nothing more: `take` gives `undefined` from now on. Returns how many items were dropped. */
  stop(): number {
    const dropped = this.#ready.length + this.#later.length;
    this.#stopped = true;
    this.#closed = true;
    this.#ready.length = 0;
    this.#later.length = 0;
    this.#notify();
    return dropped;
  }

  /**
   * The next item: a ready one, else one put aside whose time has come (waiting for it), else
   * `undefined` when the queue is closed and no task in progress can put one aside any more.
   * Call `finished()` once done with each item taken.
   */
  async take(now: () => number): Promise<T | undefined> {
    for (;;) {
      const ready = this.#ready.shift();
      if (ready !== undefined) {
        this.#busy++;
        this.#notify();
        return ready;
      }
      const nowMs = now();
      const due = this.#takeDue(nowMs);
      if (due !== undefined) {
        this.#busy++;
        return due;
      }
      if (this.#stopped || (this.#closed && this.#later.length === 0 && this.#busy === 0)) return undefined;
      await this.#change(this.#nextDueMs() - nowMs);
    }
  }

  /** One task taken is done with. */
  finished(): void {
    this.#busy--;
    this.#notify();
  }

  #takeDue(nowMs: number): T | undefined {
    const index = this.#later.findIndex((entry) => entry.dueAtMs <= nowMs);
    if (index < 0) return undefined;
    const [entry] = this.#later.splice(index, 1);
    return entry?.task;
  }

  #nextDueMs(): number {
    let next = Number.POSITIVE_INFINITY;
    for (const entry of this.#later) next = Math.min(next, entry.dueAtMs);
    return next;
  }

  /** Resolves on the next change, or after `timeoutMs`. */
  #change(timeoutMs = Number.POSITIVE_INFINITY): Promise<void> {
    this.#changed ??= new Promise<void>((resolve) => {
      this.#wake = resolve;
    });
    if (!Number.isFinite(timeoutMs)) return this.#changed;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(1, timeoutMs));
      void this.#changed?.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    this.#changed = undefined;
    wake?.();
  }
}
