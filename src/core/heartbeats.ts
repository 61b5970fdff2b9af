/**
 * One timer for the heartbeats of every lease an engine holds, instead of a `setInterval` per lease:
 * on the hot path a claim then costs a Map entry, not a timer made and cleared (and its garbage).
 *
 * Each member is beaten every `everyMs`, counted from when it joined or last beat, up to one tick
 * late. The tick is a quarter of the smaller of `everyMs` and the slack the lease leaves
 * (`leaseMs - everyMs`), so a beat always comes before the lease it extends runs out. The timer
 * stops at the first tick that finds no lease held (not at each release: one call at a time would
 * then make and clear a timer per call again), and is unref'd as the per-lease timers were: a
 * heartbeat alone does not keep the process alive.
 * @internal
 */
export class Heartbeats<T> {
  readonly #everyMs: number;
  readonly #tickMs: number;
  readonly #beat: (member: T) => void;
  /** Each member's next beat, in `performance.now()` ms. */
  readonly #due = new Map<T, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(everyMs: number, leaseMs: number, beat: (member: T) => void) {
    this.#everyMs = everyMs;
    this.#tickMs = Math.max(1, Math.floor(Math.min(everyMs, leaseMs - everyMs) / 4));
    this.#beat = beat;
  }

  /** Beats `member` every `everyMs` from now on, until `remove`. */
  add(member: T): void {
    this.#due.set(member, performance.now() + this.#everyMs);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#tick(), this.#tickMs);
      this.#timer.unref();
    }
  }

  /** Stops beating `member`; quiet if it was not beaten. */
  remove(member: T): void {
    this.#due.delete(member);
  }

  #tick(): void {
    if (this.#due.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    const nowMs = performance.now();
    for (const [member, dueMs] of this.#due) {
      if (dueMs > nowMs) continue;
      this.#due.set(member, nowMs + this.#everyMs);
      this.#beat(member);
    }
  }
}
