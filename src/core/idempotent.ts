import { AsyncLocalStorage } from 'node:async_hooks';
import { deserialize, serialize } from 'node:v8';
import { fingerprintOf } from './canonical.js';
import { type Decision, Engine, type EngineOptions, type Lease } from './engine.js';
import { ErrorCode, IdempotencyError, isIdempotencyError } from './errors.js';
import { MAX_KEY_LENGTH, storeKeyOf, validateKey } from './keys.js';
import { type Outcome, OutcomeKind } from './outcome.js';
import { type OnStoreUnavailable, storeFaultPolicyOf } from './store-fault-policy.js';
import { describeError, type ErrorRevivalOptions, reviveError, type StoredError } from './stored-error.js';
import { defaultSerializer, type ValueSerializer } from './value-codec.js';

export interface IdempotentOptions<A extends unknown[], R> extends EngineOptions, ErrorRevivalOptions {
  /**
   * Namespace of this operation's keys, so two functions given the same key never share a
   * record. Default: the function's `name`; required when the function has none.
   */
  name?: string;
  /**
   * Derives the caller's key from the arguments, before the function runs. `undefined`, `null`
   * or `''` fails with `KEY_MISSING`. Default: the fingerprint of the arguments, so equal
   * arguments are one operation.
   */
  key?: (...args: A) => string | undefined | null;
  /**
   * Derives the scope (tenant, user) from the arguments; keys in two scopes never meet. A scope
   * function that answers `undefined`, `null` or `''` fails the call with `SCOPE_MISSING` rather
   * than sharing one scope with every other such caller. Default: one scope.
   */
  scope?: (...args: A) => string | undefined | null;
  /**
   * The value whose canonical form is the fingerprint; the same key with another fingerprint
   * fails with `FINGERPRINT_MISMATCH`. Default: all the arguments.
   */
  fingerprint?: (...args: A) => unknown;
  /**
   * A concurrent duplicate (the key is in progress elsewhere): `'throw'` fails at once with
   * `IN_PROGRESS`; `'wait'` waits for the first caller's result, up to `waitTimeoutMs`.
   * Default `'throw'`.
   */
  onInProgress?: 'throw' | 'wait';
  /** With `onInProgress: 'wait'`, the longest wait in ms before `IN_PROGRESS`. Default `leaseMs`. */
  waitTimeoutMs?: number;
  /**
   * Which thrown errors are the operation's outcome, stored and thrown again to every retry
   * (for example a declined card). What is stored: the error's name, message, own fields whose
   * values are strings, numbers, booleans or null (`code`, `status`...) and its cause chain. A retry
   * gets an `Error` with those and `idempotentReplay: true`; pass `errors` (or `reviveError`) to get
   * your own classes back. Default: none; any error releases the key so a retry runs.
   */
  storeErrors?: (error: unknown) => boolean;
  /** How return values are stored. Default: JSON when it carries the value exactly, else a `node:v8` structured clone. */
  serializer?: ValueSerializer<R>;
  /** Longest key in characters. Default 255. */
  maxKeyLength?: number;
  /**
   * When the store is down or slower than `storeTimeoutMs` for the claim: `'reject'` throws
   * `STORE_UNAVAILABLE` and the function does not run (fail closed); `'run-unprotected'` runs it
   * without a record (a retry during the outage runs it again), reports an `unprotected_run`
   * event and the `idem.unprotected_runs` counter, and returns its value. A store that fails on
   * `complete`, after the function ran, throws `STORE_UNAVAILABLE` under `'reject'`; under
   * `'run-unprotected'` the value is returned (the failed call is reported as a `store_error`).
   * Default `'reject'`.
   */
  onStoreUnavailable?: OnStoreUnavailable;
}

/** What the running function can learn about its own claim, through `idempotencyContext()`. */
export interface IdempotencyContext {
  /** The caller's key, as derived from the arguments. */
  key: string;
  /** The hashed key the record is stored under. */
  storeKey: string;
  /** 1 on the first run, more when a crashed or stalled holder was taken over. */
  attempts: number;
  /** Aborts if another caller takes the lease over: the result will not be stored. */
  signal: AbortSignal;
  /**
   * True when the store was down and the function runs without a record
   * (`onStoreUnavailable: 'run-unprotected'`): `attempts` is then 0 and `signal` never aborts.
   */
  unprotected: boolean;
}

const context = new AsyncLocalStorage<IdempotencyContext>();

/** Inside a function wrapped by `idempotent`, its claim; `undefined` elsewhere. */
export function idempotencyContext(): IdempotencyContext | undefined {
  return context.getStore();
}

/**
 * Wraps an async function so that calls with the same key run it once: the first call runs it
 * and stores its result; later calls get the stored result back (or `IN_PROGRESS` while the
 * first is still running, or `FINGERPRINT_MISMATCH` if the arguments differ).
 *
 * @example
 * ```ts
 * import { idempotent } from 'idem';
 * import { SqliteStore } from 'idem/sqlite';
 *
 * const charge = idempotent(
 *   async (req: { id: string; amount: number }) => payments.charge(req.amount),
 *   { store: new SqliteStore(), name: 'charge', key: (req) => req.id },
 * );
 * await charge({ id: 'order-42', amount: 500 }); // charges
 * await charge({ id: 'order-42', amount: 500 }); // returns the same result, charges nothing
 * ```
 */
export function idempotent<A extends unknown[], R>(
  fn: (...args: A) => R | Promise<R>,
  options: IdempotentOptions<A, Awaited<R>>,
): (...args: A) => Promise<Awaited<R>> {
  if (typeof fn !== 'function') {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      '[idem] idempotent(fn, options) needs a function as its first argument.',
    );
  }
  const engine = new Engine(options);
  const namespace = options.name ?? fn.name;
  if (!namespace) {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      '[idem] the function has no name: pass `name` so its keys do not collide with other operations.',
    );
  }
  const serializer = (options.serializer ?? defaultSerializer) as ValueSerializer<Awaited<R>>;
  const maxKeyLength = options.maxKeyLength ?? MAX_KEY_LENGTH;
  const waitMs = options.onInProgress === 'wait' ? (options.waitTimeoutMs ?? engine.leaseMs) : 0;
  const { key: keyOf, scope: scopeOf, fingerprint: fingerprintSource, storeErrors } = options;
  const revival = revivalOptions(options);
  const failOpen = storeFaultPolicyOf('[idem]', options.onStoreUnavailable) === 'run-unprotected';

  const storeKeyFor = (args: A, key: string) =>
    storeKeyOf(namespace, scopeOf === undefined ? '' : requiredScope(scopeOf(...args), namespace), key);

  return async function idempotentCall(...args: A): Promise<Awaited<R>> {
    const fingerprint = fingerprintOf(fingerprintSource ? fingerprintSource(...args) : args);
    const key = validateKey(keyOf ? keyOf(...args) : fingerprint, maxKeyLength);
    const storeKey = storeKeyFor(args, key);
    const input = { key: storeKey, fingerprint, waitMs };
    const decision = failOpen ? await engine.beginOrUnprotected(input, 'function') : await engine.begin(input);

    if (decision.kind === 'replay') return replay(decision.outcome, serializer, key, revival);
    if (decision.kind === 'unprotected') {
      const bare: IdempotencyContext = { key, storeKey, attempts: 0, signal: NEVER_ABORTED, unprotected: true };
      return await context.run(bare, async () => await fn(...args));
    }
    if (decision.kind !== 'run') throw refusal(decision, key, namespace, storeKey);
    const { lease } = decision;
    const claim = new LeaseContext(key, storeKey, lease);
    const value = await runHolding(lease, storeErrors, () => runIn(claim, fn, args));
    const completing = completeWith(lease, value, serializer, namespace);
    await (failOpen ? completing.catch(keepValueOnOutage) : completing);
    return value;
  };
}

/**
 * Under 'run-unprotected', a store that fails on `complete` after the function ran: its value
 * matters more than the record the outage kept from being written (reported as a `store_error`).
 */
function keepValueOnOutage(error: unknown): void {
  if (!isIdempotencyError(error, ErrorCode.STORE_UNAVAILABLE)) throw error;
}

/**
 * `fn(...args)` with `claim` as its context. A promise it returns is handed on as it is (no async
 * wrapper: a promise and a microtask less per call); a plain value or a thenable is settled inside
 * the context, as an `async` wrapper would, so a thenable's `then` still sees the claim.
 */
function runIn<A extends unknown[], R>(claim: IdempotencyContext, fn: (...args: A) => R, args: A): Promise<Awaited<R>> {
  return context.run(claim, () => {
    const result = fn(...args);
    return result instanceof Promise ? (result as Promise<Awaited<R>>) : settle(result);
  });
}

async function settle<R>(result: R): Promise<Awaited<R>> {
  return await result;
}

/**
 * The context of a run under a lease. A class, not an object literal with a `signal` getter: the
 * literal made a getter function per call, and the lease's AbortSignal is made only if asked for.
 */
class LeaseContext implements IdempotencyContext {
  readonly key: string;
  readonly storeKey: string;
  readonly attempts: number;
  readonly unprotected = false;
  readonly #lease: Lease;

  constructor(key: string, storeKey: string, lease: Lease) {
    this.key = key;
    this.storeKey = storeKey;
    this.attempts = lease.attempts;
    this.#lease = lease;
  }

  get signal(): AbortSignal {
    return this.#lease.signal;
  }
}

/** The signal of an unprotected run: no lease, so nothing can take it over. */
const NEVER_ABORTED = new AbortController().signal;

/** The error for a key this call may not run: claimed with other arguments, or still running elsewhere. */
function refusal(
  decision: Extract<Decision, { kind: 'mismatch' | 'in_progress' }>,
  key: string,
  namespace: string,
  storeKey: string,
): IdempotencyError {
  if (decision.kind === 'mismatch') {
    return new IdempotencyError(
      ErrorCode.FINGERPRINT_MISMATCH,
      `[idem] key "${key}" of ${namespace} was first used with other arguments; use a new key for a new operation.`,
      { key: storeKey },
    );
  }
  return new IdempotencyError(
    ErrorCode.IN_PROGRESS,
    `[idem] key "${key}" of ${namespace} is being run by another caller; retry in ${decision.retryAfterMs} ms or use onInProgress: 'wait'.`,
    { key: storeKey, retryAfterMs: decision.retryAfterMs },
  );
}

/**
 * Runs the work under `lease`. A thrown error is stored as the outcome when `storeErrors` says so
 * (a declined card), else the key is released so that a retry runs again; either way it is rethrown.
 */
/** @internal Runs `work` under `lease`: on a throw, stores the error (when `storeErrors` says so) or releases the key. */
export async function runHolding<T>(
  lease: Lease,
  storeErrors: ((error: unknown) => boolean) | undefined,
  work: () => Promise<T>,
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (storeErrors?.(error) && !isIdempotencyError(error)) {
      // The error is the outcome; if it cannot be stored, the caller still sees the original.
      await lease.complete({ kind: OutcomeKind.error, payload: serialize(describeError(error)) }).catch(() => {});
    } else {
      await lease.release().catch(() => {
        // The key stays claimed until its lease ends; the caller's error matters more.
      });
    }
    throw error;
  }
}

/** Stores `value`; one that cannot be serialized is stored as the reason it will not be replayed. */
/** @internal Completes `lease` with `value`; a value that cannot be serialized is recorded as an unreadable result. */
export async function completeWith<R>(
  lease: Lease,
  value: R,
  serializer: ValueSerializer<R>,
  namespace: string,
): Promise<void> {
  let payload: Uint8Array;
  try {
    payload = serializer.encode(value);
  } catch (cause) {
    // The work ran: releasing would let a retry run it twice. Store why the result is missing.
    const message = `[idem] the result of ${namespace} could not be serialized (${cause instanceof Error ? cause.message : String(cause)}); it was returned once and will not be replayed. Return plain data or pass a serializer.`;
    await lease.complete({
      kind: OutcomeKind.error,
      payload: serialize({ name: 'IdempotencyError', code: ErrorCode.RESULT_UNREADABLE, message }),
    });
    return;
  }
  await lease.complete({ kind: OutcomeKind.value, payload });
}

/** @internal The stored outcome as the call's answer: the value, or the stored error thrown. */
export function replay<R>(
  outcome: Outcome,
  serializer: ValueSerializer<R>,
  key: string,
  revival: ErrorRevivalOptions,
): R {
  if (outcome.kind === OutcomeKind.value) return serializer.decode(outcome.payload);
  if (outcome.kind === OutcomeKind.error) throw reviveError(deserialize(outcome.payload) as StoredError, revival);
  if (outcome.kind === OutcomeKind.notStored) {
    throw new IdempotencyError(
      ErrorCode.RESULT_TOO_LARGE,
      `[idem] key "${key}" already ran, but its result was not stored (${new TextDecoder().decode(outcome.payload)}). The operation will not run again for this key; look the result up another way.`,
    );
  }
  throw new IdempotencyError(
    ErrorCode.RESULT_TOO_LARGE,
    `[idem] key "${key}" already ran and succeeded, but its result (${new TextDecoder().decode(outcome.payload)} bytes) was over maxResultBytes (the option, or the store's own limit when smaller) and was not stored. The operation will not run again for this key; return less, or raise maxResultBytes if the store allows it.`,
  );
}

/** `errors` and `reviveError` checked once, when the function is wrapped. */
function revivalOptions(options: ErrorRevivalOptions): ErrorRevivalOptions {
  const { errors, reviveError: revive } = options;
  if (errors !== undefined && !(Array.isArray(errors) && errors.every((entry) => typeof entry === 'function'))) {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      '[idem] `errors` must be a list of error classes, such as [DeclinedError, FraudError].',
    );
  }
  if (revive !== undefined && typeof revive !== 'function') {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      '[idem] `reviveError` must be a function that takes the stored error and returns the error to throw.',
    );
  }
  return { ...(errors === undefined ? {} : { errors }), ...(revive === undefined ? {} : { reviveError: revive }) };
}

/**
 * The scope a `scope` function answered, refused when empty: an anonymous caller silently put in
 * the shared scope would meet every other anonymous caller's keys.
 */
function requiredScope(scope: string | undefined | null, namespace: string): string {
  if (typeof scope === 'string' && scope !== '') return scope;
  throw new IdempotencyError(
    ErrorCode.SCOPE_MISSING,
    `[idem] the scope function of ${namespace} answered ${scope === '' ? "''" : String(scope)}: a call needs a scope (tenant, user) so that its key cannot meet another caller's. Return the caller's id, or leave \`scope\` out when every caller shares one scope.`,
  );
}
