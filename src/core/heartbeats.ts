import { type DueEntry, DueQueue } from './due-queue.js';

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
  /** Every member waits `everyMs` between beats, so they fall due in the order they joined or last beat. */
  readonly #queue = new DueQueue<Heartbeat<T>>();
  #timer: NodeJS.Timeout | undefined;

  constructor(everyMs: number, leaseMs: number, beat: (member: T) => void) {
    this.#everyMs = everyMs;
    this.#tickMs = Math.max(1, Math.floor(Math.min(everyMs, leaseMs - everyMs) / 4));
    this.#beat = beat;
  }

  /** Beats `member` every `everyMs` from now on, until the heartbeat returned is passed to `remove`. */
  add(member: T): Heartbeat<T> {
    const heartbeat: Heartbeat<T> = { member, dueMs: performance.now() + this.#everyMs, settled: false };
    this.#queue.push(heartbeat);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#tick(), this.#tickMs);
      this.#timer.unref();
    }
    return heartbeat;
  }

  /** Stops `heartbeat`; quiet if it was stopped already. */
  remove(heartbeat: Heartbeat<T>): void {
    this.#queue.settle(heartbeat);
  }

  #tick(): void {
    if (this.#queue.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    const nowMs = performance.now();
    const due: Heartbeat<T>[] = [];
    for (let heartbeat = this.#queue.takeDue(nowMs); heartbeat !== undefined; heartbeat = this.#queue.takeDue(nowMs)) {
      due.push(heartbeat);
    }
    // Queued again before beating: a beat that ends the lease (lost) removes it from the queue.
    for (const heartbeat of due) {
      heartbeat.dueMs = nowMs + this.#everyMs;
      this.#queue.push(heartbeat);
      this.#beat(heartbeat.member);
    }
  }
}

/** One member's place in the heartbeat queue. @internal */
export interface Heartbeat<T> extends DueEntry {
  readonly member: T;
}
