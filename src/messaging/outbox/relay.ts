/**
 * `OutboxRelay`: the loop that moves committed outbox messages to a broker. Each pass is one
 * `OutboxStore.relay` transaction (lock due messages, publish, mark, commit); passes follow each
 * other while there is work and the relay sleeps `pollMs` when there is none. Several relays may
 * run over one outbox: the store's row locks keep them off each other's messages. A relay that
 * dies between the broker's confirmation and the commit leaves its messages pending, so another
 * pass publishes them again with the same ids: consumers' inboxes (or JetStream's duplicate
 * window) drop the second copy.
 */

import { ErrorCode, IdempotencyError } from '../../core/errors.js';
import { MAX_TIMER_MS, wholeOption } from '../../core/option-checks.js';
import type { OutboxPublisher, OutboxStore, PendingMessage, PublishResult, RelayPassResult } from './outbox.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** The longest a Node timer waits, in ms: past it, Node fires after 1 ms, and the loop would spin. */

/** Exponential backoff with jitter between publish attempts of one message (or after store errors). */
export interface RelayBackoff {
  /** The delay after the first failure, in ms; it doubles with each further failure. At most 2^31 - 1. Default 1,000. */
  baseMs?: number;
  /** The longest delay, in ms: from `baseMs` to 2^31 - 1 (a Node timer's longest). Default 300,000 (5 minutes). */
  maxMs?: number;
}

/** Deleting published messages once they are old enough. */
export interface RelayCleanup {
  /** Published messages older than this (from their publish), in ms, are deleted. Default 7 days. */
  afterMs?: number;
  /** How often the relay deletes them, in ms. Default 60,000. */
  everyMs?: number;
}

export interface OutboxRelayOptions {
  /** The outbox to relay from: `postgresOutbox`, `sqliteOutbox`, `mysqlOutbox`, or your own `OutboxStore`. */
  outbox: Pick<OutboxStore<never>, 'relay' | 'cleanup'>;
  /** The broker to publish to: `amqpPublisher`, `jetstreamPublisher`, or your own `OutboxPublisher`. */
  publisher: Pick<OutboxPublisher, 'publish'>;
  /** Most messages one pass locks and publishes: a whole number from 1 to 1000. Default 100. */
  batchSize?: number;
  /** How long the relay sleeps when a pass found nothing due, in ms: 1 to 2^31 - 1 (a Node timer's longest). Default 500. */
  pollMs?: number;
  /**
   * Publish attempts of one message before it moves to the dead-letter state (`idem outbox dead`,
   * `revive`). Default 10.
   */
  maxAttempts?: number;
  /** Delay between attempts of a failing message, and after a pass that failed as a whole. */
  backoff?: RelayBackoff;
  /** Deletion of published messages, or `false` to keep them (delete them yourself). Default: after 7 days, checked every minute. */
  cleanup?: RelayCleanup | false;
  /** Stops the relay (as `stop()`) when aborted. */
  signal?: AbortSignal;
  /**
   * Called with an error the relay went past: a pass or a cleanup that failed (store unreachable).
   * The relay goes on after a backoff. Default: ignored.
   */
  onError?: (error: unknown) => void;
  /** Called after each pass with what it did, for telemetry. Default: none. */
  onPass?: (result: RelayPassResult) => void;
}

type Phase = 'idle' | 'running' | 'stopping' | 'stopped';

const EMPTY: RelayPassResult = { claimed: 0, published: 0, failed: 0, dead: 0 };

/**
 * Publishes an outbox's messages to a broker, in a loop (`start`) or on demand (`runOnce`, `drain`).
 * One relay never runs two passes at once; run several relays (processes) for more throughput.
 *
 * @example
 * ```ts
 * const relay = new OutboxRelay({
 *   outbox: postgresOutbox({ pool, table: 'outbox' }),
 *   publisher: amqpPublisher({ channel: await connection.createConfirmChannel(), exchange: 'events' }),
 *   onError: (error) => console.error('outbox relay:', error),
 * }).start();
 * process.once('SIGTERM', () => void relay.stop());
 * ```
 */
export class OutboxRelay {
  readonly #outbox: OutboxRelayOptions['outbox'];
  readonly #publisher: OutboxRelayOptions['publisher'];
  readonly #batchSize: number;
  readonly #pollMs: number;
  readonly #maxAttempts: number;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #cleanup: Required<RelayCleanup> | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #onError: (error: unknown) => void;
  readonly #onPass: ((result: RelayPassResult) => void) | undefined;
  #phase: Phase = 'idle';
  #loop: Promise<void> | undefined;
  /** The pass in flight (or the last one): the next pass starts after it, so passes never overlap. */
  #tail: Promise<unknown> = Promise.resolve();
  #wake: (() => void) | undefined;
  #nextCleanupAtMs = 0;
  readonly #onAbort = () => void this.stop();

  constructor(options: OutboxRelayOptions) {
    const { outbox, publisher } = options ?? ({} as OutboxRelayOptions);
    if (typeof outbox?.relay !== 'function' || typeof publisher?.publish !== 'function') {
      throw invalid('needs an outbox (an OutboxStore) and a publisher (an OutboxPublisher).');
    }
    this.#outbox = outbox;
    this.#publisher = publisher;
    this.#batchSize = whole(options.batchSize ?? 100, 'batchSize', 1, 1000);
    this.#pollMs = whole(options.pollMs ?? 500, 'pollMs', 1, MAX_TIMER_MS);
    this.#maxAttempts = whole(options.maxAttempts ?? 10, 'maxAttempts', 1);
    this.#baseMs = whole(options.backoff?.baseMs ?? 1000, 'backoff.baseMs', 0, MAX_TIMER_MS);
    this.#maxMs = whole(options.backoff?.maxMs ?? 300_000, 'backoff.maxMs', this.#baseMs, MAX_TIMER_MS);
    this.#cleanup =
      options.cleanup === false
        ? undefined
        : {
            afterMs: whole(options.cleanup?.afterMs ?? 7 * DAY_MS, 'cleanup.afterMs', 0),
            everyMs: whole(options.cleanup?.everyMs ?? 60_000, 'cleanup.everyMs', 1),
          };
    this.#signal = options.signal;
    this.#onError = options.onError ?? (() => {});
    this.#onPass = options.onPass;
  }

  /** True from `start()` until `stop()` has finished. */
  get running(): boolean {
    return this.#phase === 'running' || this.#phase === 'stopping';
  }

  /** Starts the loop (once): passes back to back while there is work, a sleep of `pollMs` when there is none. */
  start(): this {
    if (this.#phase !== 'idle') return this;
    if (this.#signal?.aborted) {
      this.#phase = 'stopped';
      return this;
    }
    this.#phase = 'running';
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#loop = this.#run();
    return this;
  }

  /**
   * Stops the loop and waits for the pass in flight to commit. Messages it had not locked stay
   * pending for the next relay. Does not close the outbox or the publisher.
   */
  async stop(): Promise<void> {
    if (this.#phase === 'running') this.#phase = 'stopping';
    if (this.#phase === 'idle') this.#phase = 'stopped';
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#wake?.();
    await this.#loop;
    await this.#tail.catch(() => {});
    this.#phase = 'stopped';
  }

  /**
   * One pass now: locks up to `batchSize` due messages, publishes them, marks them and commits.
   * Waits for a pass in flight first. Throws what the store throws (nothing was marked).
   */
  runOnce(): Promise<RelayPassResult> {
    const pass = this.#tail.then(
      () => this.#pass(),
      () => this.#pass(),
    );
    this.#tail = pass.catch(() => {});
    return pass;
  }

  /** Passes until one finds nothing due; returns what they did in all. Throws what the store throws. */
  async drain(): Promise<RelayPassResult> {
    const total = { ...EMPTY };
    for (;;) {
      const result = await this.runOnce();
      if (result.claimed === 0) return total;
      total.claimed += result.claimed;
      total.published += result.published;
      total.failed += result.failed;
      total.dead += result.dead;
    }
  }

  /**
   * When a message that failed `attempts` times should be tried again: `undefined` (dead) after
   * `maxAttempts`, else after an exponential delay with equal jitter (half fixed, half random), so
   * relays that failed together do not retry together.
   */
  retryAtMs(attempts: number, nowMs = Date.now()): number | undefined {
    if (attempts >= this.#maxAttempts) return undefined;
    return nowMs + this.#delayMs(attempts);
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (this.#phase === 'running') {
      let claimed = 0;
      try {
        await this.#cleanupWhenDue();
        claimed = (await this.runOnce()).claimed;
        failures = 0;
      } catch (error) {
        failures++;
        this.#report(error);
        await this.#pause(Math.max(this.#delayMs(failures), this.#pollMs));
        continue;
      }
      // A pass that claimed anything may have left more behind (a full batch, or the next message
      // of an ordering key, which a pass takes one at a time): go again at once.
      if (claimed === 0) await this.#pause(this.#pollMs);
    }
  }

  async #pass(): Promise<RelayPassResult> {
    const result = await this.#outbox.relay({
      limit: this.#batchSize,
      nowMs: Date.now(),
      publish: (messages) => this.#publish(messages),
      retryAtMs: (_message, attempts) => this.retryAtMs(attempts),
    });
    try {
      this.#onPass?.(result);
    } catch (error) {
      this.#report(error);
    }
    return result;
  }

  /**
   * The publisher's answer, made whole: a publisher that throws (or answers too few results) must
   * not roll the pass back, or a message that always breaks it would be retried forever and never
   * reach the dead-letter state. Its messages count as failed instead.
   */
  async #publish(messages: readonly PendingMessage[]): Promise<readonly PublishResult[]> {
    let results: readonly PublishResult[];
    try {
      results = await this.#publisher.publish(messages);
    } catch (error) {
      const failed: PublishResult = { ok: false, error: `the publisher threw: ${reasonOf(error)}` };
      return messages.map(() => failed);
    }
    return messages.map((_message, index): PublishResult => {
      const result = Array.isArray(results) ? results[index] : undefined;
      if (result?.ok === true) return { ok: true };
      if (result?.ok === false) return { ok: false, error: String(result.error) };
      return { ok: false, error: `the publisher gave no result for this message (${String(results?.length)} results)` };
    });
  }

  async #cleanupWhenDue(): Promise<void> {
    if (this.#cleanup === undefined || Date.now() < this.#nextCleanupAtMs) return;
    this.#nextCleanupAtMs = Date.now() + this.#cleanup.everyMs;
    try {
      // A backlog of old rows goes in chunks of 1000, each its own short statement.
      const limit = 1000;
      while (this.#phase === 'running') {
        const deleted = await this.#outbox.cleanup(Date.now() - this.#cleanup.afterMs, limit);
        if (deleted < limit) break;
      }
    } catch (error) {
      this.#report(error);
    }
  }

  #delayMs(attempts: number): number {
    const exponential = Math.min(this.#maxMs, this.#baseMs * 2 ** Math.min(attempts - 1, 40));
    return Math.round(exponential / 2 + (Math.random() * exponential) / 2);
  }

  /** Sleeps `ms`, or less when the relay stops. */
  #pause(ms: number): Promise<void> {
    if (this.#phase !== 'running') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  #report(error: unknown): void {
    try {
      this.#onError(error);
    } catch {
      // A failing error handler must not stop the relay.
    }
  }
}

function whole(value: number, name: string, min: number, max?: number): number {
  return wholeOption('[idem] [outbox relay]', name, value, min, max);
}

function invalid(message: string): IdempotencyError {
  return new IdempotencyError(ErrorCode.INVALID_OPTIONS, `[idem] [outbox relay] ${message}`);
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
