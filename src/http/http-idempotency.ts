import { hashText } from '../core/canonical.js';
import { Engine, type EngineOptions } from '../core/engine.js';
import { ErrorCode, IdempotencyError, isIdempotencyError } from '../core/errors.js';
import { MAX_KEY_LENGTH } from '../core/keys.js';
import { type Outcome, OutcomeKind } from '../core/outcome.js';
import { type OnStoreUnavailable, storeFaultPolicyOf } from '../core/store-fault-policy.js';
import { type CachePolicy, storesStatus } from './cache-policy.js';
import { type AnonymousPolicy, callerScope, httpStoreKey } from './caller-scope.js';
import type { HttpRequestInfo, HttpResponseData } from './http-types.js';
import { parseIdempotencyKey } from './key-header.js';
import { problemResponse, requestTooLargeError } from './problem.js';
import { type FingerprintOptions, requestFingerprint } from './request-fingerprint.js';
import { decodeResponse, ResponseRecording } from './response-recording.js';

export const DEFAULT_METHODS = ['POST', 'PATCH'] as const;
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** The longest `Retry-After` of a 409 in-progress answer by default, in ms: a client retries a short handler soon. */
export const DEFAULT_RETRY_AFTER_MS = 1000;
/**
 * Added to the response of a request run unprotected because the store was down
 * (`onStoreUnavailable: 'run-unprotected'`), as `Idempotent-Replayed` is to a replay.
 */
export const UNPROTECTED_HEADER = 'idempotent-unprotected';
/** Response headers replayed by default (lower case). */
export const DEFAULT_REPLAY_HEADERS = ['content-type', 'location', 'etag', 'content-location', 'link'] as const;
/** Never stored nor replayed, even if asked for: cookies, hop-by-hop headers, lengths the server recomputes. */
const NEVER_REPLAYED = new Set([
  'set-cookie',
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'idempotent-replayed',
  UNPROTECTED_HEADER,
]);
const NEVER_IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT']);

export type { CachePolicy };

/** What happened to a request, for metrics and logs. */
export interface HttpEvent {
  type:
    | 'pass'
    | 'run'
    | 'replay'
    | 'in_progress'
    | 'mismatch'
    | 'refused'
    | 'store_error'
    | 'unprotected'
    | 'stored'
    | 'released';
  /** Time spent in the store for this step, in ms. */
  storeMs?: number;
  /** The error behind `refused`, `store_error`, or a failed `stored`/`released`. */
  error?: IdempotencyError;
}

export interface HttpIdempotencyOptions extends EngineOptions {
  /** A request without a key is refused with 400. Default false: it passes through unprotected. */
  required?: boolean;
  /** Methods protected (upper case). GET, HEAD, OPTIONS are never. Default POST and PATCH; add PUT and DELETE on request. */
  methods?: string[];
  /** The header that carries the key. Default `Idempotency-Key`. */
  headerName?: string;
  /** Longest key in characters. Default 255. */
  maxKeyLength?: number;
  /**
   * Whose keys these are: two scopes never share a record. Return `undefined` when the request's
   * caller is unknown (see `anonymous`). Default `callerScope()`: a hash of the credentials the
   * request carries (`Authorization`, the usual API-key headers, else its cookies), so two clients
   * that pick the same key never see each other's responses. `callerScope({ headers, cookies })`
   * names your own; a tenant or user id from your auth layer is best.
   */
  scope?: (request: HttpRequestInfo) => string | undefined;
  /**
   * A keyed request whose scope is `undefined` (no credential Idem recognises): `refuse` it with
   * 400 `caller-unknown`, `pass` it through unprotected, or put it in one `shared` scope with every
   * other unknown caller (only for APIs where any caller may see any other's response). Default
   * `refuse`: Idem never mixes callers it cannot tell apart. A request without a key is not
   * concerned: it passes through (or gets 400 `key-missing` with `required`).
   */
  anonymous?: AnonymousPolicy;
  /**
   * A key belongs to one method and route: the same key on another route is a new operation.
   * Default false: as at Stripe, a key is the caller's for every route, and reusing it on another
   * method or route is refused with 422.
   */
  keyPerRoute?: boolean;
  /** What the fingerprint covers besides method and route; or a function that computes it. Default: the whole body. */
  fingerprint?: FingerprintOptions | ((request: HttpRequestInfo) => string);
  /**
   * Which responses are stored. `default`: 1xx to 4xx except 400, 401, 403, 404, 408, 409, 422
   * and 429 (refusals before anything happened, or "try again"); those and every 5xx are not
   * stored and the key is released, so a corrected request or a retry runs again. `stripe`: every
   * response the handler sent, 5xx included. A function of the status decides for itself. A thrown
   * error that never became a response, and a dropped connection, always release the key.
   */
  policy?: CachePolicy;
  /** More response headers to store and replay (lower case), besides Content-Type, Location, ETag, Content-Location and Link. */
  replayHeaders?: string[];
  /**
   * A duplicate of a request still running: `throw` answers 409 with Retry-After at once (the
   * function wrapper's word: it throws `IN_PROGRESS`), `wait` waits for the first response.
   * `reject` is a deprecated alias of `throw`. Default `throw`.
   */
  onInProgress?: 'throw' | 'wait' | 'reject';
  /** With `wait`, the longest wait in ms before answering 409. Default `leaseMs`. */
  waitTimeoutMs?: number;
  /**
   * The longest `Retry-After` of a 409 in-progress answer, in ms; shorter when the first request's
   * lease ends sooner. Sent in whole seconds, rounded up, at least 1. Default 1000: most handlers
   * finish within a second or two, and a lease (30 s) says nothing of when the first one will.
   */
  retryAfterMs?: number;
  /** Request bodies larger than this are refused with 413 before anything is stored, in bytes. Default 1 MiB. */
  maxBodyBytes?: number;
  /**
   * When the store is down or slower than `storeTimeoutMs` for the claim: `'reject'` answers 503
   * with `Retry-After` and the handler does not run (fail closed); `'run-unprotected'` runs the
   * handler without a record (a retry during the outage runs it again), adds
   * `Idempotent-Unprotected: true` to its response, and reports an `unprotected_run` event and the
   * `idem.unprotected_runs` counter. Default `'reject'`.
   */
  onStoreUnavailable?: OnStoreUnavailable;
  /** @deprecated Use `onStoreUnavailable: 'run-unprotected'`; `true` means the same. */
  failOpen?: boolean;
  /** Namespace of the keys, so two APIs on one store never share a record. Default `http`. */
  namespace?: string;
  /** Called for each step; for metrics and logs. Must not throw. */
  observe?: (event: HttpEvent) => void;
}

/** What the adapter does with a request. */
export type HttpDecision =
  /** Run the handler without a record; add `headers` (lower case) to its response when given. */
  | { action: 'pass'; headers?: readonly (readonly [string, string])[] }
  | { action: 'respond'; response: HttpResponseData }
  | { action: 'run'; recording: ResponseRecording };

/** A request as the store knows it: what `identify` found and `decide` asks the store about. */
export interface HttpIdentity {
  /** The record's key: a hash of namespace, scope (and route with `keyPerRoute`) and the caller's key. */
  storeKey: string;
  /** The request's fingerprint (method, route, the canonical body). */
  fingerprint: string;
}

/** The request is identified, or it passes through, or it is refused before the store is asked. */
export type HttpIdentification =
  | { action: 'identified'; identity: HttpIdentity }
  | { action: 'pass' }
  | { action: 'respond'; response: HttpResponseData };

/**
 * The framework-neutral heart of every HTTP adapter: decides from the `Idempotency-Key` header
 * and the store whether a request runs, replays, or is refused, and records what it answered.
 *
 * @example
 * ```ts
 * const http = new HttpIdempotency({ store });
 * const decision = await http.begin(requestInfo);
 * if (decision.action === 'respond') send(decision.response);
 * else if (decision.action === 'run') { runHandler(); await decision.recording.finish(); }
 * ```
 */
export class HttpIdempotency {
  readonly engine: Engine;
  readonly options: HttpIdempotencyOptions;
  readonly #methods: Set<string>;
  readonly #header: string;
  readonly #replayHeaders: Set<string>;
  readonly #stores: (status: number) => boolean;
  readonly #waitMs: number;
  readonly #maxBodyBytes: number;
  readonly #namespace: string;
  readonly #scope: (request: HttpRequestInfo) => string | undefined;
  readonly #anonymous: AnonymousPolicy;
  readonly #keyPerRoute: boolean;
  readonly #fingerprint: (request: HttpRequestInfo) => string;
  readonly #retryAfterMs: number;
  readonly #failOpen: boolean;

  constructor(options: HttpIdempotencyOptions) {
    this.engine = new Engine(options);
    this.options = options;
    this.#methods = new Set((options.methods ?? DEFAULT_METHODS).map((m) => m.toUpperCase()));
    for (const method of this.#methods) {
      if (NEVER_IDEMPOTENT.has(method)) {
        throw new IdempotencyError(
          ErrorCode.INVALID_OPTIONS,
          `[idem] ${method} is safe by definition and never takes an Idempotency-Key; list only POST, PATCH, PUT or DELETE in methods.`,
        );
      }
    }
    this.#header = (options.headerName ?? 'idempotency-key').toLowerCase();
    this.#replayHeaders = new Set([
      ...DEFAULT_REPLAY_HEADERS,
      ...(options.replayHeaders ?? []).map((h) => h.toLowerCase()),
    ]);
    for (const header of NEVER_REPLAYED) this.#replayHeaders.delete(header);
    this.#stores = storesStatus(options.policy ?? 'default');
    this.#waitMs = inProgressOf(options.onInProgress) === 'wait' ? (options.waitTimeoutMs ?? this.engine.leaseMs) : 0;
    this.#maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.#namespace = options.namespace ?? 'http';
    this.#anonymous = anonymousPolicyOf(options.anonymous ?? 'refuse');
    this.#scope = options.scope ?? callerScope();
    this.#keyPerRoute = options.keyPerRoute === true;
    this.#fingerprint = fingerprintOf(options.fingerprint);
    this.#retryAfterMs = retryAfterOf(options.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS);
    this.#failOpen = failOpenOf(options);
  }

  /** True when this request's method is protected; adapters may skip reading bodies otherwise. */
  covers(method: string): boolean {
    // Methods come upper case from every server; only an odd one pays for toUpperCase.
    return this.#methods.has(method) || this.#methods.has(method.toUpperCase());
  }

  /**
   * False when the request will pass through untouched (method not protected, or no key on a
   * route that does not require one): adapters then skip reading the body.
   */
  applies(method: string, header: HttpRequestInfo['header']): boolean {
    return this.covers(method) && (this.options.required === true || header(this.#header) !== undefined);
  }

  /** The size limit for request bodies, in bytes, for adapters that read bodies themselves. */
  get maxBodyBytes(): number {
    return this.#maxBodyBytes;
  }

  /**
   * Decides what to do with a request: `identify` it, then `decide` with the store. Most
   * adapters need nothing else.
   */
  begin(request: HttpRequestInfo): Promise<HttpDecision> {
    // Not an async function: the store's promise is returned as it is, without another layer.
    let identification: HttpIdentification;
    try {
      identification = this.identify(request);
    } catch (error) {
      return Promise.reject(error);
    }
    return identification.action === 'identified'
      ? this.decide(identification.identity)
      : Promise.resolve(identification);
  }

  /**
   * Identifies a request without asking the store: its store key and fingerprint, or `pass` (not
   * protected, no key on an optional route, unknown caller with `anonymous: 'pass'`), or a refusal
   * to send (key missing or malformed, body too large, caller unknown).
   */
  identify(request: HttpRequestInfo): HttpIdentification {
    if (!this.covers(request.method)) return this.#pass();
    try {
      const key = parseIdempotencyKey(request.header(this.#header), this.options.maxKeyLength ?? MAX_KEY_LENGTH);
      if (key === undefined) {
        if (!this.options.required) return this.#pass();
        throw new IdempotencyError(
          ErrorCode.KEY_MISSING,
          `[idem] this endpoint requires an Idempotency-Key header: send a unique value (a UUID) per operation, and the same value when you retry it.`,
        );
      }
      if (request.bodyBytes !== undefined && request.bodyBytes > this.#maxBodyBytes) {
        throw requestTooLargeError(this.#maxBodyBytes, request.bodyBytes);
      }
      const scope = this.#scope(request);
      if (scope === undefined && this.#anonymous !== 'shared') {
        if (this.#anonymous === 'pass') return this.#pass();
        throw new IdempotencyError(
          ErrorCode.SCOPE_MISSING,
          '[idem] this request carries no credential to scope its Idempotency-Key by (Authorization, an API-key header or a cookie), and Idem never shares keys between callers it cannot tell apart. Send your credentials with the request; API owners can set `scope` (or `anonymous`).',
        );
      }
      const fingerprint = this.#fingerprint(request);
      const storeKey = httpStoreKey({
        namespace: this.#namespace,
        scope,
        method: request.method,
        route: request.route,
        keyPerRoute: this.#keyPerRoute,
        key,
      });
      return { action: 'identified', identity: { storeKey, fingerprint } };
    } catch (error) {
      if (!isIdempotencyError(error)) throw error;
      this.options.observe?.({ type: 'refused', error });
      return { action: 'respond', response: problemResponse(error) };
    }
  }

  /**
   * Asks the store about an identified request: `run` (the key is claimed; record the response),
   * or `respond` with the stored response, 409 in progress, 422 mismatch, 503 store down; or
   * `pass` with the `Idempotent-Unprotected` header when the store is down and
   * `onStoreUnavailable` is `'run-unprotected'`.
   */
  async decide(identity: HttpIdentity): Promise<HttpDecision> {
    const started = performance.now();
    let decision: Awaited<ReturnType<Engine['beginOrUnprotected']>>;
    const input = { key: identity.storeKey, fingerprint: identity.fingerprint, waitMs: this.#waitMs };
    try {
      decision = this.#failOpen ? await this.engine.beginOrUnprotected(input, 'http') : await this.engine.begin(input);
    } catch (error) {
      const failure = isIdempotencyError(error)
        ? error
        : new IdempotencyError(ErrorCode.STORE_UNAVAILABLE, String(error), { cause: error });
      this.options.observe?.({ type: 'store_error', error: failure, storeMs: performance.now() - started });
      return { action: 'respond', response: problemResponse(failure) };
    }
    const storeMs = performance.now() - started;

    switch (decision.kind) {
      case 'unprotected':
        this.options.observe?.({ type: 'store_error', error: decision.error, storeMs });
        this.options.observe?.({ type: 'unprotected', error: decision.error });
        return { action: 'pass', headers: UNPROTECTED_HEADERS };
      case 'run':
        this.options.observe?.({ type: 'run', storeMs });
        return {
          action: 'run',
          recording: new ResponseRecording(decision.lease, this.#replayHeaders, this.#stores, this.#report),
        };
      case 'replay':
        this.options.observe?.({ type: 'replay', storeMs });
        return { action: 'respond', response: this.#replay(decision.outcome) };
      case 'in_progress': {
        // The whole seconds of Retry-After, so the detail and the header say the same.
        const retryAfterMs = Math.max(1, Math.ceil(Math.min(decision.retryAfterMs, this.#retryAfterMs) / 1000)) * 1000;
        const error = new IdempotencyError(
          ErrorCode.IN_PROGRESS,
          `[idem] a request with this key is still being processed; retry after ${retryAfterMs / 1000} s with the same key.`,
          { retryAfterMs },
        );
        this.options.observe?.({ type: 'in_progress', storeMs, error });
        return { action: 'respond', response: problemResponse(error) };
      }
      case 'mismatch': {
        const error = new IdempotencyError(
          ErrorCode.FINGERPRINT_MISMATCH,
          '[idem] this Idempotency-Key was already used with a different request (method, route or body); use a new key for a new operation.',
        );
        this.options.observe?.({ type: 'mismatch', storeMs, error });
        return { action: 'respond', response: problemResponse(error) };
      }
    }
  }

  readonly #report = (event: HttpEvent): void => {
    this.options.observe?.(event);
  };

  #pass(): { action: 'pass' } {
    this.options.observe?.({ type: 'pass' });
    return { action: 'pass' };
  }

  #replay(outcome: Outcome): HttpResponseData {
    if (outcome.kind === OutcomeKind.value) {
      const response = decodeResponse(outcome.payload);
      // Only the headers this instance stores are replayed: a record written by anyone else who
      // can write to the store (without encryptionKey) cannot plant Set-Cookie or hop-by-hop headers.
      response.headers = response.headers.filter(([name]) => this.#replayHeaders.has(name.toLowerCase()));
      response.headers.push(['idempotent-replayed', 'true']);
      return response;
    }
    const payload = new TextDecoder().decode(outcome.payload);
    const what =
      outcome.kind === OutcomeKind.notStored
        ? `the first request with this key was acted on, but its response broke off before it ended (${payload}), so it was not stored and cannot be replayed.`
        : `the first request with this key succeeded, but its response (${payload} bytes) was over the storable limit, so it cannot be replayed.`;
    return problemResponse(
      new IdempotencyError(
        ErrorCode.RESULT_TOO_LARGE,
        `[idem] ${what} The request was not run again; look the result up another way.`,
      ),
    );
  }
}

const UNPROTECTED_HEADERS = [[UNPROTECTED_HEADER, 'true']] as const;

/** True when the options ask to run unprotected while the store is down (`failOpen` is the old spelling). */
function failOpenOf(options: HttpIdempotencyOptions): boolean {
  const policy = storeFaultPolicyOf('[idem]', options.onStoreUnavailable);
  if (options.failOpen === undefined) return policy === 'run-unprotected';
  if (options.onStoreUnavailable !== undefined && options.failOpen !== (policy === 'run-unprotected')) {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      `[idem] failOpen (${String(options.failOpen)}) contradicts onStoreUnavailable ('${policy}'); drop failOpen, the old spelling of onStoreUnavailable: 'run-unprotected'.`,
    );
  }
  return options.failOpen === true;
}

function inProgressOf(choice: HttpIdempotencyOptions['onInProgress']): 'throw' | 'wait' {
  if (choice === undefined || choice === 'throw' || choice === 'reject') return 'throw';
  if (choice === 'wait') return choice;
  throw new IdempotencyError(
    ErrorCode.INVALID_OPTIONS,
    `[idem] onInProgress must be 'throw' (answer 409 at once) or 'wait', got ${String(choice)}.`,
  );
}

function anonymousPolicyOf(policy: AnonymousPolicy): AnonymousPolicy {
  if (policy === 'refuse' || policy === 'pass' || policy === 'shared') return policy;
  throw new IdempotencyError(
    ErrorCode.INVALID_OPTIONS,
    `[idem] anonymous must be 'refuse', 'pass' or 'shared', got ${String(policy)}.`,
  );
}

function retryAfterOf(ms: number): number {
  if (Number.isFinite(ms) && ms >= 0) return ms;
  throw new IdempotencyError(
    ErrorCode.INVALID_OPTIONS,
    `[idem] retryAfterMs must be a number of ms, 0 or more (1000 sends Retry-After: 1), got ${String(ms)}.`,
  );
}

/**
 * The request's fingerprint. Method and route always count, also under a fingerprint function of
 * your own: a key reused on another route must read as another request (422), never replay the
 * first route's response.
 */
function fingerprintOf(option: HttpIdempotencyOptions['fingerprint']): (request: HttpRequestInfo) => string {
  if (typeof option !== 'function') return (request) => requestFingerprint(request, option);
  return (request) => hashText(`${request.method.toUpperCase()}\n${request.route}\n${option(request)}`);
}
