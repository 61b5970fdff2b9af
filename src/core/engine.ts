import { Deadlines } from './deadlines.js';
import { ErrorCode, IdempotencyError, isIdempotencyError, storeUnavailable } from './errors.js';
import { type Heartbeat, Heartbeats } from './heartbeats.js';
import type { EncryptionKeys } from './keyring.js';
import { type Outcome, OutcomeCodec, OutcomeKind } from './outcome.js';
import { type ClaimResult, type IdempotencyRecord, type Store, StoreLimits } from './store.js';
import { type UnprotectedRun, unprotectedReasonOf } from './store-fault-policy.js';
import { type IdemEvent, type RunEnd, type RunSpan, Telemetry, type TelemetryOptions } from './telemetry.js';
import { newToken } from './tokens.js';

export const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_LEASE_MS = 30_000;
export const DEFAULT_STORE_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_RESULT_BYTES = 1024 * 1024;

export interface EngineOptions {
  /** Where records live. */
  store: Store;
  /** How long a completed record is kept and replayed, in ms. Default 24 hours. */
  retentionMs?: number;
  /** How long a claim holds the key before another caller may take it over, in ms. Default 30,000. */
  leaseMs?: number;
  /** How often the lease is extended while the work runs, in ms; 0 turns the heartbeat off. Default `leaseMs / 3`. */
  heartbeatMs?: number;
  /** A store call that takes longer fails with `STORE_UNAVAILABLE` (fail closed), in ms. Default 5,000. */
  storeTimeoutMs?: number;
  /**
   * Largest stored outcome in bytes; a larger one is recorded as "too large" instead. Lowered to
   * the store's own `maxResultBytes` when it declares a smaller one. Default 1 MiB.
   */
  maxResultBytes?: number;
  /**
   * Seals stored outcomes with AES-256-GCM, each bound to its record. One key (32 bytes, or a
   * secret string that HKDF-SHA-256 turns into 32 bytes), or a list to rotate keys: the first
   * seals, every one opens what it sealed. Default: not encrypted.
   * @example `encryptionKey: process.env.IDEM_KEY` or, rotating, `[newKey, oldKey]`
   */
  encryptionKey?: EncryptionKeys;
  /** The clock, in ms since the epoch. Default `Date.now`. */
  now?: () => number;
  /**
   * Spans and metrics through OpenTelemetry: pass `{ tracer: trace.getTracer('idem'), meter:
   * metrics.getMeter('idem') }` (see docs/operations.md for the names). Default: none, at no cost.
   */
  telemetry?: TelemetryOptions;
  /**
   * Told of each claim decided, completion, release, lost lease and failed store call, in order,
   * without keys or results. What it throws is ignored. Default: none.
   */
  onEvent?: (event: IdemEvent) => void;
}

export interface BeginInput {
  /** The store key (see `storeKeyOf`): 1 to 255 UTF-8 bytes (`StoreLimits.keyBytes`), else `KEY_INVALID`. */
  key: string;
  /**
   * The fingerprint of what is asked (see `fingerprintOf`): 1 to 255 UTF-8 bytes
   * (`StoreLimits.fingerprintBytes`), else `INVALID_OPTIONS`.
   */
  fingerprint: string;
  /** When the key is in progress elsewhere, wait up to this long (ms) for it to finish. Default 0: answer at once. */
  waitMs?: number;
}

/** What to do with a key, decided from its record. */
export type Decision =
  | { kind: 'run'; lease: Lease }
  | { kind: 'replay'; outcome: Outcome; record: IdempotencyRecord }
  | { kind: 'in_progress'; retryAfterMs: number; record: IdempotencyRecord }
  | { kind: 'mismatch'; record: IdempotencyRecord };

/**
 * The one engine behind every face of Idem: claim a key with a fenced lease, let the caller run
 * the work, then complete (store the outcome) or release (let a retry run again).
 *
 * @example
 * ```ts
 * const engine = new Engine({ store });
 * const decision = await engine.begin({ key: storeKeyOf('charges', userId, key), fingerprint: fingerprintOf(body) });
 * if (decision.kind === 'run') {
 *   try { await decision.lease.complete({ kind: OutcomeKind.value, payload: await work() }); }
 *   catch (e) { await decision.lease.release(); throw e; }
 * }
 * ```
 */
export class Engine {
  /** Where records live (the `store` option). */
  readonly store: Store;
  /** How long a completed record is kept, in ms (the `retentionMs` option, or its default). */
  readonly retentionMs: number;
  /** How long a claim holds the key, in ms (the `leaseMs` option, or its default). */
  readonly leaseMs: number;
  /** How often a lease is extended while the work runs, in ms; 0 when the heartbeat is off. */
  readonly heartbeatMs: number;
  /** The time limit on each store call, in ms (the `storeTimeoutMs` option, or its default). */
  readonly storeTimeoutMs: number;
  /**
   * The largest outcome stored whole, in bytes: the `maxResultBytes` option, or the store's own
   * `maxResultBytes` when that is smaller.
   */
  readonly maxResultBytes: number;
  /** How outcomes are encoded and sealed. @internal */
  readonly codec: OutcomeCodec;
  /** The clock, in ms since the epoch (the `now` option). */
  readonly now: () => number;
  /** Where spans, metrics and events go; `undefined` when nothing listens. @internal */
  readonly telemetry: Telemetry | undefined;
  readonly #deadlines: Deadlines;
  /** The one timer that extends every lease held; `undefined` when the heartbeat is off. @internal */
  readonly heartbeats: Heartbeats<Lease> | undefined;

  constructor(options: EngineOptions) {
    if (options?.store === undefined || typeof options.store.claim !== 'function') {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        '[idem] `store` is required: pass a store such as new SqliteStore() or new MemoryStore().',
      );
    }
    this.store = options.store;
    this.retentionMs = positive('retentionMs', options.retentionMs ?? DEFAULT_RETENTION_MS);
    this.leaseMs = positive('leaseMs', options.leaseMs ?? DEFAULT_LEASE_MS);
    this.heartbeatMs = nonNegative('heartbeatMs', options.heartbeatMs ?? Math.floor(this.leaseMs / 3));
    this.storeTimeoutMs = positive('storeTimeoutMs', options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS);
    this.maxResultBytes = Math.min(
      positive('maxResultBytes', options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES),
      storeCapacity(this.store),
    );
    if (this.retentionMs <= this.leaseMs) {
      // An in-progress record past its retention counts as absent: a second caller could claim the
      // key while the first still runs.
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] retentionMs (${this.retentionMs}) must be longer than leaseMs (${this.leaseMs}): a record must outlive the lease that protects it.`,
      );
    }
    if (this.heartbeatMs >= this.leaseMs) {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] heartbeatMs (${this.heartbeatMs}) must be shorter than leaseMs (${this.leaseMs}), or 0 to turn the heartbeat off.`,
      );
    }
    this.codec = new OutcomeCodec(options.encryptionKey);
    this.#deadlines = new Deadlines(this.storeTimeoutMs, (operation, cause) =>
      storeUnavailable(this.store.name, operation, cause),
    );
    this.heartbeats =
      this.heartbeatMs > 0 ? new Heartbeats<Lease>(this.heartbeatMs, this.leaseMs, Lease.beat) : undefined;
    this.now = options.now ?? Date.now;
    this.telemetry = Telemetry.of(this.store.name, options.telemetry, options.onEvent);
  }

  /** Claims the key, or says why not: replay the stored outcome, in progress, or mismatch. */
  begin(input: BeginInput): Promise<Decision> {
    return this.telemetry === undefined ? this.#begin(input) : this.telemetry.claim(() => this.#begin(input));
  }

  /**
   * `begin` for a face whose `onStoreUnavailable` is `'run-unprotected'`: when the first claim
   * fails with `STORE_UNAVAILABLE` (nothing is known of the key), answers `unprotected` instead of
   * throwing, and reports it (`unprotected_run` event, `idem.unprotected_runs` counter) under
   * `face` (`function`, `http`, `gateway`). Every other failure throws as with `begin`, and so does
   * a store that fails while waiting for a run known to be in progress elsewhere: running then
   * would surely run the work twice.
   */
  async beginOrUnprotected(input: BeginInput, face: string): Promise<Decision | UnprotectedRun> {
    let unknownKeyFailure: IdempotencyError | undefined;
    const onFirstClaimFailure = (error: IdempotencyError) => {
      unknownKeyFailure = error;
    };
    try {
      return await (this.telemetry === undefined
        ? this.#begin(input, onFirstClaimFailure)
        : this.telemetry.claim(() => this.#begin(input, onFirstClaimFailure)));
    } catch (error) {
      if (unknownKeyFailure === undefined || error !== unknownKeyFailure) throw error;
      const reason = unprotectedReasonOf(unknownKeyFailure);
      this.telemetry?.unprotectedRun(face, reason);
      return { kind: 'unprotected', reason, error: unknownKeyFailure };
    }
  }

  async #begin(input: BeginInput, onFirstClaimFailure?: (error: IdempotencyError) => void): Promise<Decision> {
    checkText(input.key, 'key', StoreLimits.keyBytes);
    checkText(input.fingerprint, 'fingerprint', StoreLimits.fingerprintBytes);
    const deadline = this.now() + (input.waitMs ?? 0);
    const nowMs = this.now();
    let claimed: ClaimResult;
    try {
      // Awaited here rather than through #claimOnce: one async layer less on every call.
      claimed = await this.#claim(input, nowMs);
    } catch (error) {
      if (isIdempotencyError(error, ErrorCode.STORE_UNAVAILABLE)) onFirstClaimFailure?.(error);
      throw error;
    }
    let decision = this.#decide(input, claimed, nowMs);
    if (decision.kind !== 'in_progress' || deadline <= this.now()) return decision;
    const waitedFrom = performance.now();
    decision = await this.#waitFor(input, decision, deadline);
    this.telemetry?.waited(performance.now() - waitedFrom, decision.kind);
    return decision;
  }

  /** Waits, until `deadline`, for the key another caller holds: polls it, then claims it once it is free. */
  async #waitFor(input: BeginInput, first: Decision, deadline: number): Promise<Decision> {
    let decision = first;
    let pauseMs = 10;
    while (decision.kind === 'in_progress') {
      const nowMs = this.now();
      if (nowMs >= deadline) return decision;
      await sleep(Math.max(1, Math.min(pauseMs, deadline - nowMs, decision.record.leaseExpiresAtMs - nowMs)));
      pauseMs = Math.min(pauseMs * 2, 250);
      // Poll with a cheap read until the holder finishes, releases, or its lease ends; only then
      // claim again, so that waiters do not hammer the store with writes.
      const at = this.now();
      const current = await this.call('get', () => this.store.get(input.key, at));
      if (current?.state === 'in_progress' && current.leaseExpiresAtMs > at) {
        if (current.fingerprint !== input.fingerprint) return { kind: 'mismatch', record: current };
        decision = { kind: 'in_progress', retryAfterMs: current.leaseExpiresAtMs - at, record: current };
      } else {
        decision = await this.#claimOnce(input);
      }
    }
    return decision;
  }

  async #claimOnce(input: BeginInput): Promise<Decision> {
    const nowMs = this.now();
    return this.#decide(input, await this.#claim(input, nowMs), nowMs);
  }

  /** One claim of `input.key` at `nowMs`, with a fresh fencing token. */
  #claim(input: BeginInput, nowMs: number): Promise<ClaimResult> {
    const token = newToken();
    return this.call('claim', () =>
      this.store.claim({
        key: input.key,
        fingerprint: input.fingerprint,
        token,
        nowMs,
        leaseExpiresAtMs: nowMs + this.leaseMs,
        expiresAtMs: nowMs + this.retentionMs,
      }),
    );
  }

  /** What the answer to a claim made at `nowMs` means for the caller. */
  #decide(input: BeginInput, result: ClaimResult, nowMs: number): Decision {
    const { record } = result;
    if (result.claimed) return { kind: 'run', lease: Lease.granted(this, record) };
    if (record.fingerprint !== input.fingerprint) return { kind: 'mismatch', record };
    if (record.state === 'completed' && record.result !== null) {
      const stored = record.result;
      const outcome =
        this.telemetry === undefined
          ? this.codec.decode(stored, input.key)
          : this.telemetry.replay(() => this.codec.decode(stored, input.key));
      return { kind: 'replay', outcome, record };
    }
    return { kind: 'in_progress', retryAfterMs: Math.max(0, record.leaseExpiresAtMs - nowMs), record };
  }

  /**
   * Runs one store call with the timeout, turning driver failures into `STORE_UNAVAILABLE`.
   * For the engine and its leases only; code outside the engine uses `callStore` (deadlines.ts).
   * @internal
   */
  call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    if (this.telemetry === undefined) return this.#call(operation, run);
    return this.telemetry.storeCall(operation, () => this.#call(operation, run));
  }

  #call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    let work: Promise<T>;
    try {
      work = run();
    } catch (error) {
      return Promise.reject(storeUnavailable(this.store.name, operation, error));
    }
    return this.#deadlines.within(work, operation);
  }
}

/**
 * The right to run the work for one key, held until `complete` or `release`. A heartbeat extends
 * it while the work runs; if another caller took it over, `signal` aborts and `complete` is refused.
 */
export class Lease {
  /** The store key this lease holds. */
  readonly key: string;
  /** This claim's fencing token: the store accepts `complete`, `extend` and `release` only with it. */
  readonly token: string;
  /** How many times this key was claimed, this claim included. */
  readonly attempts: number;
  /** When the record was first claimed (ms since epoch). */
  readonly createdAtMs: number;
  readonly #engine: Engine;
  /** Made on first use of `signal`: an AbortController costs more than the rest of a claim. */
  #controller: AbortController | undefined;
  /** Why the lease was lost, once it was. */
  #lostWith: IdempotencyError | undefined;
  /** This lease's place on the engine's heartbeat timer; `undefined` when the heartbeat is off. */
  readonly #heartbeat: Heartbeat<Lease> | undefined;
  #finished = false;
  /** The `idem.run` span, from the claim to `complete` or `release`; only with a tracer. */
  readonly #runSpan: RunSpan | undefined;
  /** When the lease runs out unless extended again (ms since epoch, the engine's clock). */
  #endsAtMs: number;

  /**
   * The lease for the record `engine` just claimed. Only the engine grants leases: a user cannot
   * make one, and the constructor is private.
   * @internal
   */
  static granted(engine: Engine, record: IdempotencyRecord): Lease {
    return new Lease(engine, record);
  }

  private constructor(engine: Engine, record: IdempotencyRecord) {
    this.#engine = engine;
    this.key = record.key;
    this.token = record.token;
    this.attempts = record.attempts;
    this.createdAtMs = record.createdAtMs;
    this.#endsAtMs = record.leaseExpiresAtMs;
    this.#runSpan = engine.telemetry?.startRun(record.attempts);
    this.#heartbeat = engine.heartbeats?.add(this);
  }

  /** One heartbeat of `lease`, for the engine's shared heartbeat timer. @internal */
  static beat(lease: Lease): void {
    void lease.#beat();
  }

  /** The largest outcome `complete` stores whole, in bytes (the engine's `maxResultBytes`, the store's cap included). */
  get maxResultBytes(): number {
    return this.#engine.maxResultBytes;
  }

  /** Aborts when the lease is lost to another caller: stop the work if you can. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#lostWith !== undefined) this.#controller.abort(this.#lostWith);
    }
    return this.#controller.signal;
  }

  /**
   * Stores the outcome; the record becomes `completed` and later callers replay it. An outcome
   * over `maxResultBytes` is recorded as "too large" instead and `false` is returned.
   * Throws `LEASE_LOST` when another caller took the key over: nothing is stored.
   *
   * The work has run by now, so a store that fails (`STORE_UNAVAILABLE`) is asked again, with a
   * growing pause (25 ms to 1 s), for as long as the lease holds: no one else may run the work
   * meanwhile, and a store back within the lease keeps the result. Past the lease it throws
   * `STORE_UNAVAILABLE`. A retry that finds the record completed with this lease's token (an
   * earlier try landed, but its answer was lost) counts as stored.
   */
  complete(outcome: Outcome): Promise<boolean> {
    const telemetry = this.#engine.telemetry;
    return telemetry === undefined ? this.#complete(outcome) : telemetry.complete(() => this.#complete(outcome));
  }

  async #complete(outcome: Outcome): Promise<boolean> {
    this.#stop('completed');
    const engine = this.#engine;
    let encoded = engine.codec.encode(outcome, this.key);
    let whole = true;
    if (encoded.length > engine.maxResultBytes) {
      whole = false;
      const size = new TextEncoder().encode(String(outcome.payload.length));
      encoded = engine.codec.encode({ kind: OutcomeKind.tooLarge, payload: size }, this.key);
    }
    let pauseMs = 25;
    for (;;) {
      try {
        if (await this.#store(encoded)) return whole;
        throw this.#lose('the result was not stored');
      } catch (error) {
        // Only a store that failed is worth asking again, and only while the lease keeps the key ours.
        if (!isIdempotencyError(error, ErrorCode.STORE_UNAVAILABLE) || engine.now() + pauseMs >= this.#endsAtMs) {
          throw error;
        }
        await sleep(pauseMs);
        pauseMs = Math.min(pauseMs * 2, 1000);
      }
    }
  }

  /**
   * One try at storing `encoded`. A refusal may mean that an earlier try landed and only its
   * answer was lost (an earlier retry, or a command the client sent again after it reconnected,
   * as ioredis does): the record, completed under this lease's token, says so.
   */
  #store(encoded: Uint8Array): Promise<boolean> {
    const engine = this.#engine;
    const nowMs = engine.now();
    return engine
      .call('complete', () =>
        engine.store.complete({
          key: this.key,
          token: this.token,
          result: encoded,
          nowMs,
          expiresAtMs: nowMs + engine.retentionMs,
        }),
      )
      .then((stored) => stored || this.#landedEarlier());
  }

  /** After a refused completion: whether the record is completed under this lease's token all the same. */
  async #landedEarlier(): Promise<boolean> {
    const engine = this.#engine;
    const record = await engine.call('get', () => engine.store.get(this.key, engine.now()));
    return record?.state === 'completed' && record.token === this.token;
  }

  /** Gives the key up so that a retry runs the work again. Quiet if the lease was already lost. */
  async release(): Promise<void> {
    this.#stop('released');
    const telemetry = this.#engine.telemetry;
    await (telemetry === undefined ? this.#release() : telemetry.release(() => this.#release()));
  }

  #release(): Promise<boolean> {
    return this.#engine.call('release', () => this.#engine.store.release(this.key, this.token));
  }

  /** Extends the lease now; throws `LEASE_LOST` if another caller took it over. */
  async extend(): Promise<void> {
    const engine = this.#engine;
    const nowMs = engine.now();
    const ok = await engine.call('extend', () =>
      engine.store.extend({
        key: this.key,
        token: this.token,
        nowMs,
        leaseExpiresAtMs: nowMs + engine.leaseMs,
        // Retention counts from the last sign of life, as it did from the claim: a record whose
        // holder is alive never expires under it (retentionMs > leaseMs keeps it past the lease).
        expiresAtMs: nowMs + engine.retentionMs,
      }),
    );
    if (!ok) throw this.#lose('stop the work: its result will not be stored');
    this.#endsAtMs = nowMs + engine.leaseMs;
  }

  /** Stops extending the lease without giving it up: it runs out after `leaseMs` unless completed. */
  stopHeartbeat(): void {
    if (this.#heartbeat !== undefined) this.#engine.heartbeats?.remove(this.#heartbeat);
  }

  async #beat(): Promise<void> {
    if (this.#finished) return;
    try {
      await this.extend();
    } catch (error) {
      // A store blip is retried on the next beat; a lost lease stops the heartbeat for good.
      if (isIdempotencyError(error, ErrorCode.LEASE_LOST)) this.#stop('lost');
    }
  }

  /** Ends the heartbeat, and the run span with how the work ended (the first call decides). */
  #stop(how: RunEnd): void {
    if (!this.#finished) this.#runSpan?.end(how);
    this.#finished = true;
    this.stopHeartbeat();
  }

  /**
   * Marks the lease lost and aborts `signal`, whichever call found out (an extension, or a refused
   * completion when the heartbeat is off), so work still running for the key can stop.
   */
  #lose(what: string): IdempotencyError {
    const error = new IdempotencyError(
      ErrorCode.LEASE_LOST,
      `[idem] [${this.#engine.store.name}] lease lost for key ${this.key}: another worker took it over after ${this.#engine.leaseMs} ms; ${what}. Raise leaseMs above the work's longest run or keep the heartbeat on.`,
      { key: this.key },
    );
    if (this.#lostWith === undefined) {
      this.#lostWith = error;
      this.#engine.telemetry?.leaseLost();
    }
    this.#controller?.abort(this.#lostWith);
    return error;
  }
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      `[idem] ${name} must be a positive number of milliseconds (bytes for sizes), got ${value}.`,
    );
  }
  return value;
}

/** The store's declared `maxResultBytes`, checked; `Infinity` when it declares none. */
function storeCapacity(store: Store): number {
  const declared = store.maxResultBytes;
  if (declared === undefined) return Number.POSITIVE_INFINITY;
  if (!Number.isSafeInteger(declared) || declared <= 0) {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      `[idem] the ${store.name} store declares maxResultBytes ${String(declared)}: a store's capacity must be a positive whole number of bytes; fix the store, or leave maxResultBytes out when it has no limit of its own.`,
    );
  }
  return declared;
}

/**
 * Refuses a key or fingerprint a store need not keep (see the text rule of the store contract):
 * not a string, empty, over `maxBytes` of UTF-8, holding NUL or a lone surrogate (which UTF-8
 * cannot carry: two keys would become one). The byte count is only taken when the length could
 * pass it (3 bytes per UTF-16 unit at most).
 */
function checkText(value: unknown, what: 'key' | 'fingerprint', maxBytes: number): void {
  let problem: string;
  if (typeof value !== 'string') problem = `a ${typeof value}`;
  else {
    const bytes = value.length * 3 <= maxBytes ? value.length : Buffer.byteLength(value, 'utf8');
    if (bytes >= 1 && bytes <= maxBytes && isPlainText(value)) return;
    problem = bytes < 1 || bytes > maxBytes ? `${bytes} bytes long` : 'text with NUL or a lone surrogate';
  }
  throw new IdempotencyError(
    what === 'key' ? ErrorCode.KEY_INVALID : ErrorCode.INVALID_OPTIONS,
    `[idem] the ${what} given to begin() is ${problem}; stores keep well-formed text of 1 to ${maxBytes} bytes (UTF-8) without NUL. Derive it with ${what === 'key' ? 'storeKeyOf()' : 'fingerprintOf()'}, which gives 43 characters.`,
  );
}

/** Well-formed Unicode (no lone surrogate) without NUL. */
function isPlainText(value: string): boolean {
  return !value.includes('\u0000') && (value as unknown as { isWellFormed(): boolean }).isWellFormed();
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      `[idem] ${name} must be 0 or a positive number of milliseconds, got ${value}.`,
    );
  }
  return value;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
