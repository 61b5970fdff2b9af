import {
  createServer,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { declaredLength, hasBody, nodeHeader } from '../../adapters/shared/node-request.js';
import { sendResponse } from '../../adapters/shared/node-response.js';
import { setPassHeaders } from '../../adapters/shared/pass-headers.js';
import { parsedBody } from '../../adapters/shared/request-body.js';
import { ErrorCode, IdempotencyError, isIdempotencyError } from '../../core/errors.js';
import { callerScope } from '../../http/caller-scope.js';
import { type HttpEvent, HttpIdempotency, type HttpIdempotencyOptions } from '../../http/http-idempotency.js';
import type { HttpRequestInfo } from '../../http/http-types.js';
import { requestFingerprint } from '../../http/request-fingerprint.js';
import { ADMIN_PREFIX, type AdminContext, answerAdmin, tokenDigest } from './admin-endpoints.js';
import { type ClientLimitOptions, clientLimits, refuseMalformed } from './client-limits.js';
import { Flight, Flights } from './flights.js';
import { answerProblem } from './gateway-problems.js';
import { GatewayMetrics } from './metrics.js';
import { readBodyUpTo, refuseTooLarge } from './request-body.js';
import { checkFraming, forwardPath } from './request-target.js';
import { DEFAULT_PROBE_TIMEOUT_MS, StoreProbe } from './store-probe.js';
import { type ExchangeInput, UpstreamExchange, type UpstreamLink } from './upstream-exchange.js';

export { ADMIN_PREFIX } from './admin-endpoints.js';

export const DEFAULT_UPSTREAM_TIMEOUT_MS = 60_000;
export const DEFAULT_GRACE_MS = 10_000;
export { DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_MAX_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT_MS } from './client-limits.js';

export interface GatewayOptions extends HttpIdempotencyOptions, ClientLimitOptions {
  /**
   * The API behind the gateway: `http://host:port` or `https://...`, optionally with a base path
   * (`http://host:port/api` sends `/charges` to `/api/charges`). The base path is a boundary:
   * request paths with dot-segments are refused (400), so none can reach above it.
   */
  upstream: string | URL;
  /**
   * How long the upstream may stay silent (before its response starts, or between two chunks of
   * it), in ms. Before the head: 504, and the key is released. Mid-body: the client is cut off and
   * the key answers 410 from then on, as for any response that broke off. Default 60,000.
   */
  upstreamTimeoutMs?: number;
  /**
   * On `close()`, how long requests in flight may take to finish before they are cut off, in ms.
   * Keys of requests the upstream had not answered are released; a response being stored is
   * left to be stored. Default 10,000.
   */
  graceMs?: number;
  /**
   * Request headers (any case) whose values identify the caller and scope its keys, so that two
   * clients who pick the same key never share a record. With `scopeCookies`, replaces the default
   * (`callerScope()`: `Authorization`, `X-API-Key`, `API-Key`, `X-Auth-Token`, `X-Access-Token`,
   * else the whole `Cookie` header). Ignored when `scope` is given.
   */
  scopeHeaders?: string[];
  /** Cookie names whose values identify the caller (`sid`); see `scopeHeaders`. */
  scopeCookies?: string[];
  /**
   * A token `GET /__idem/metrics` requires as `Authorization: Bearer <token>` (401 otherwise).
   * `/__idem/health` and `/__idem/ready` stay open. Default: none, metrics are open.
   */
  metricsToken?: string;
  /** How long `/__idem/health` and `/__idem/ready` reuse one store probe's answer, in ms. Default 1,000. */
  healthCacheMs?: number;
  /** Most connections open to the upstream at once; more requests queue. Default 512. */
  maxUpstreamSockets?: number;
  /**
   * Called with an error the gateway did not expect while handling a request (a client that
   * leaves mid-body is expected and not reported). Default: one line on stderr.
   */
  onError?: (error: unknown) => void;
}

/** How a `close()` went. */
export interface ShutdownReport {
  /** Requests in flight when shutdown began that finished within the grace period. */
  finished: number;
  /** Requests cut off after the grace period; the keys of those the upstream had not answered were released. */
  cutOff: number;
}

/** A request that carries a key, as `#start` checked it. */
interface KeyedRequest {
  req: IncomingMessage;
  res: ServerResponse;
  /** The path to forward (see `forwardPath`). */
  path: string;
  method: string;
  /** The request target as the client sent it. */
  url: string;
  header: HttpRequestInfo['header'];
}

/** The request as the HTTP layer sees it, plus the path with its query, for the fingerprint. */
interface GatewayRequestInfo extends HttpRequestInfo {
  target: string;
}

/**
 * A reverse proxy that gives any HTTP API the `Idempotency-Key` semantics of Idem's HTTP layer:
 * the first request with a key is forwarded and its response streamed back while it is recorded;
 * a retry gets the recorded response, a duplicate in flight 409, the same key with another
 * request 422. Keys are scoped by the caller's credentials (a keyed request without any is
 * refused, unless `anonymous` says otherwise); the fingerprint covers method, path, query and
 * body. Several gateways on one shared store behave as one.
 *
 * @example
 * ```ts
 * const gateway = new Gateway({ upstream: 'http://127.0.0.1:3000', store: new SqliteStore() });
 * const url = await gateway.listen(8080);
 * process.once('SIGTERM', () => void gateway.close());
 * ```
 */
export class Gateway {
  readonly metrics = new GatewayMetrics();
  readonly server: Server;
  readonly upstream: URL;
  readonly #http: HttpIdempotency;
  readonly #basePath: string;
  readonly #link: UpstreamLink;
  readonly #admin: AdminContext;
  readonly #graceMs: number;
  readonly #onError: (error: unknown) => void;
  readonly #flights = new Flights();
  #drainWaiters: (() => void)[] = [];
  #closing: Promise<ShutdownReport> | undefined;

  constructor(options: GatewayOptions) {
    this.upstream = parseUpstream(options.upstream);
    this.#basePath = this.upstream.pathname.replace(/\/+$/, '');
    this.#graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    this.#onError =
      options.onError ??
      ((error) =>
        process.stderr.write(`idem: gateway error: ${error instanceof Error ? error.message : String(error)}\n`));
    const userObserve = options.observe;
    const metrics = this.metrics;
    this.#http = new HttpIdempotency({
      ...options,
      scope: options.scope ?? scopeOf(options.scopeHeaders, options.scopeCookies),
      // Explicit, whatever the HTTP layer's defaults: a caller without credentials is refused, and
      // a key is the caller's for every route (reused on another route: 422).
      anonymous: options.anonymous ?? 'refuse',
      keyPerRoute: options.keyPerRoute ?? false,
      fingerprint: fingerprintOf(options.fingerprint),
      observe(event: HttpEvent) {
        metrics.observe(event);
        userObserve?.(event);
      },
    });
    const secure = this.upstream.protocol === 'https:';
    const timeoutMs = options.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
    // The timeout on the agent's sockets, set once per socket, not once per request.
    const agentOptions = { keepAlive: true, maxSockets: options.maxUpstreamSockets ?? 512, timeout: timeoutMs };
    this.#link = {
      url: this.upstream,
      agent: secure ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions),
      request: secure ? (httpsRequest as typeof httpRequest) : httpRequest,
      timeoutMs,
    };
    const engine = this.#http.engine;
    if (options.metricsToken !== undefined && options.metricsToken.trim() === '') {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        '[idem] [gateway] metricsToken is empty; give a long random token, or leave it out for open metrics.',
      );
    }
    this.#admin = {
      metrics,
      storeName: engine.store.name,
      probe: new StoreProbe(engine.store, {
        timeoutMs: Math.min(DEFAULT_PROBE_TIMEOUT_MS, engine.storeTimeoutMs),
        ...(options.healthCacheMs === undefined ? {} : { cacheMs: options.healthCacheMs }),
        // The driver's words (addresses, SQL) go to the operator's log, never to a client.
        onDown: (error) =>
          this.#onError(
            new Error(
              `[idem] [gateway] the ${engine.store.name} store stopped answering health probes (${reasonText(error)}); /__idem/ready answers 503 until it answers again.`,
            ),
          ),
        onUp: () => this.#onError(new Error(`[idem] [gateway] the ${engine.store.name} store answers again.`)),
      }),
      metricsTokenDigest: tokenDigest(options.metricsToken),
      inFlight: () => this.inFlight,
      closing: () => this.closing,
    };
    const limits = clientLimits(options);
    this.server = createServer(limits.server, (req, res) => this.#onRequest(req, res));
    this.server.maxConnections = limits.maxConnections;
    // Keep-alive clients must not reuse a socket the upstream's slowness made us close.
    this.server.keepAliveTimeout = 65_000;
    this.server.on('clientError', refuseMalformed);
  }

  /** Requests being handled now. */
  get inFlight(): number {
    return this.#flights.size;
  }

  /** True once `close()` was called. */
  get closing(): boolean {
    return this.#closing !== undefined;
  }

  /** Listens on `port` (0 for any free port) and resolves the gateway's base URL. */
  async listen(port: number, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${shown}:${address.port}`;
  }

  /** The request handler; usable on a server of your own. Resolves once the request is answered. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if ((req.url ?? '/').startsWith(ADMIN_PREFIX)) return answerAdmin(this.#admin, req, res);
    return new Promise((resolve) => this.#start(req, res, resolve));
  }

  /** The server's request listener: `handle` without a promise to resolve. */
  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    if ((req.url ?? '/').startsWith(ADMIN_PREFIX)) void answerAdmin(this.#admin, req, res);
    else this.#start(req, res, undefined);
  }

  /**
   * Checks the request and forwards it at once when it is not protected: no promise, no await on
   * that path, so a request without a key costs what a plain proxy's does. A keyed one goes on in
   * `#serveKeyed`. The flight lands (`#land`) when the request is over, however it ends.
   */
  #start(req: IncomingMessage, res: ServerResponse, landed: (() => void) | undefined): void {
    // A response written after the client left must not crash the process.
    res.on('error', ignore);
    const flight = new Flight(res, landed);
    this.#flights.add(flight);
    try {
      if (this.#closing !== undefined) res.setHeader('connection', 'close');
      const url = req.url ?? '/';
      const path = forwardPath(url, this.#basePath);
      checkFraming(req);
      const method = req.method ?? 'GET';
      const header = nodeHeader(req);
      if (!this.#http.applies(method, header)) {
        this.metrics.observe(PASS);
        this.#exchange(flight, { req, res, path, body: 'stream' });
        return;
      }
      this.#serveKeyed(flight, { req, res, path, method, url, header }).then(
        () => this.#land(flight),
        (error: unknown) => this.#refuse(req, res, flight, error),
      );
    } catch (error) {
      this.#refuse(req, res, flight, error);
    }
  }

  /** A request that failed before it was forwarded: a problem answer, or cut off; then it lands. */
  #refuse(req: IncomingMessage, res: ServerResponse, flight: Flight, error: unknown): void {
    if (isIdempotencyError(error)) {
      this.metrics.observe({ type: 'refused', error });
      answerProblem(res, error);
    } else {
      // The client left while its body was read (nothing was claimed yet), or a bug.
      if (!req.destroyed) this.#onError(error);
      res.destroy();
    }
    this.#land(flight);
  }

  /** A request is over: shutdown stops waiting for it, and `handle`'s promise resolves. */
  #land(flight: Flight): void {
    if (!this.#flights.remove(flight)) return;
    if (this.#flights.size === 0) for (const wake of this.#drainWaiters.splice(0)) wake();
    flight.landed?.();
  }

  /** Reads a keyed request's body, asks the store, then replays, refuses, or forwards it while recording. */
  async #serveKeyed(flight: Flight, request: KeyedRequest): Promise<void> {
    const { req, res, path, method, url, header } = request;
    const body = await this.#readKeyedBody(req, res, flight);
    if (body === undefined || flight.cancelled) return;
    const info: GatewayRequestInfo = {
      method,
      route: url.split('?')[0] ?? '/',
      target: url,
      header,
      body: body.length === 0 ? undefined : parsedBody(req.headers['content-type'], body),
      bodyBytes: body.length,
    };
    const decision = await this.#http.begin(info);
    if (flight.cancelled) {
      // Shutdown already answered this client while the store decided: give the key back.
      if (decision.action === 'run') await decision.recording.abort();
      return;
    }
    if (decision.action === 'respond') {
      sendResponse(res, decision.response);
      return;
    }
    if (decision.action === 'pass') setPassHeaders(decision, (name, value) => res.setHeader(name, value));
    const recording = decision.action === 'run' ? decision.recording : undefined;
    const input: ExchangeInput = { req, res, path, body, ...(recording === undefined ? {} : { recording }) };
    // The flight lands when `#serveKeyed` resolves, so it waits for the exchange to be over.
    await new Promise<void>((resolve) => this.#exchange(flight, input, resolve));
  }

  /**
   * Reads the body of a keyed request whole, for its fingerprint and for the upstream. Resolves
   * `undefined` when it is over `maxBodyBytes` and was refused (413) instead.
   */
  async #readKeyedBody(req: IncomingMessage, res: ServerResponse, flight: Flight): Promise<Buffer | undefined> {
    const limit = this.#http.maxBodyBytes;
    if ((declaredLength(req) ?? 0) > limit) {
      this.metrics.observe({ type: 'refused' });
      refuseTooLarge(req, res, limit);
      return undefined;
    }
    if (!hasBody(req)) return Buffer.alloc(0);
    const read = await readBodyUpTo(req, limit);
    if (read !== 'too-large') return read;
    this.metrics.observe({ type: 'refused' });
    if (!flight.cancelled) refuseTooLarge(req, res, limit);
    return undefined;
  }

  /**
   * Forwards one request. Without `over`, the flight lands when the exchange is over; with it
   * (a keyed request), `over` is told instead and the flight lands once `#serveKeyed` resolves.
   */
  #exchange(flight: Flight, input: ExchangeInput, over?: () => void): void {
    const exchange = new UpstreamExchange(this.#link, input, (end) => {
      this.metrics.upstream(end.ms, end.failed);
      if (over === undefined) this.#land(flight);
      else over();
    });
    flight.exchange = exchange;
    exchange.run();
  }

  /**
   * Stops accepting connections, lets requests in flight finish for up to `graceMs`, then cuts
   * off the rest: keys of requests the upstream had not answered are released, so a retry runs
   * them again instead of waiting for a lease nobody will complete; responses being stored are
   * stored first. Resolves when the server is closed; the store stays open.
   */
  close(): Promise<ShutdownReport> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<ShutdownReport> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const atStart = this.#flights.size;
    await Promise.race([this.#drained(), sleep(this.#graceMs)]);
    const left = this.#flights.toArray();
    await Promise.all(left.map((flight) => flight.cancel()));
    await Promise.race([this.#drained(), sleep(1000)]);
    this.server.closeAllConnections();
    await closed;
    this.#link.agent.destroy();
    return { finished: atStart - left.length, cutOff: left.length };
  }

  #drained(): Promise<void> {
    if (this.#flights.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }
}

/** One listener for every response's errors, instead of a new closure per request. */
function ignore(): void {}

/** The metrics event of every request forwarded unprotected. */
const PASS: HttpEvent = { type: 'pass' };

function reasonText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Checks the upstream URL: http(s), a host, no query or fragment. */
export function parseUpstream(upstream: string | URL): URL {
  let url: URL;
  try {
    url = new URL(String(upstream));
  } catch {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      `[idem] --upstream ${JSON.stringify(String(upstream))} is not a URL; write http://host:port, e.g. http://127.0.0.1:3000.`,
    );
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '' || url.search || url.hash) {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      `[idem] --upstream ${JSON.stringify(String(upstream))} must be http:// or https:// with a host and no query, e.g. http://127.0.0.1:3000.`,
    );
  }
  return url;
}

function scopeOf(headers: string[] | undefined, cookies: string[] | undefined): HttpIdempotencyOptions['scope'] {
  if (headers === undefined && cookies === undefined) return undefined; // the HTTP layer's default
  return callerScope({ ...(headers === undefined ? {} : { headers }), ...(cookies === undefined ? {} : { cookies }) });
}

/**
 * The fingerprint counts the query string too: `POST /charges?currency=eur` and `?currency=usd`
 * with one key are two requests (422), not a replay of the first.
 */
function fingerprintOf(option: HttpIdempotencyOptions['fingerprint']): (request: HttpRequestInfo) => string {
  if (typeof option === 'function') return option;
  return function gatewayFingerprint(request) {
    const target = (request as Partial<GatewayRequestInfo>).target ?? request.route;
    return requestFingerprint({ ...request, route: target }, option);
  };
}
