import {
  type ClientRequest,
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
import {
  declaredLength,
  endWithBody,
  hasBody,
  nodeHeader,
  parsedBody,
  readBody,
  recordServerResponse,
  sendResponse,
} from '../../adapters/node-http/server-response.js';
import { ErrorCode, IdempotencyError } from '../../core/errors.js';
import { callerScope } from '../../http/caller-scope.js';
import { type HttpEvent, HttpIdempotency, type HttpIdempotencyOptions } from '../../http/http-idempotency.js';
import type { HttpRequestInfo, HttpResponseData } from '../../http/http-types.js';
import { requestTooLarge } from '../../http/problem.js';
import { requestFingerprint } from '../../http/request-fingerprint.js';
import type { ResponseRecording } from '../../http/response-recording.js';
import { copyResponseHead, upstreamRequestHeaders } from './forward-headers.js';
import { GatewayMetrics } from './metrics.js';

export const DEFAULT_UPSTREAM_TIMEOUT_MS = 60_000;
export const DEFAULT_GRACE_MS = 10_000;
/** Paths under this prefix are the gateway's own and never forwarded. */
export const ADMIN_PREFIX = '/__idem/';
/** Most of an upstream response held back to go out in one write with its head, in bytes. */
const HOLD_BYTES = 64 * 1024;

export interface GatewayOptions extends HttpIdempotencyOptions {
  /**
   * The API behind the gateway: `http://host:port` or `https://...`, optionally with a base path
   * (`http://host:port/api` sends `/charges` to `/api/charges`).
   */
  upstream: string | URL;
  /**
   * How long the upstream may stay silent (before its response starts, or between two chunks of
   * it) before the gateway answers 504 and releases the key, in ms. Default 60,000.
   */
  upstreamTimeoutMs?: number;
  /**
   * On `close()`, how long requests in flight may take to finish before they are cut off and
   * their keys released, in ms. Default 10,000.
   */
  graceMs?: number;
  /**
   * Request headers (lower case) whose values scope the keys, so that two clients who pick the
   * same key never share a record. Default: the HTTP layer's own scope, the `Authorization` header.
   */
  scopeHeaders?: string[];
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
  /** Requests cut off after the grace period; the keys of protected ones were released. */
  cutOff: number;
}

/** One request being handled: what to cut off and release if shutdown cannot wait for it. */
interface Flight {
  res: ServerResponse;
  upstream: ClientRequest | undefined;
  recording: ResponseRecording | undefined;
  cancelled: boolean;
}

/** The request as the HTTP layer sees it, plus the path with its query, for the fingerprint. */
interface GatewayRequestInfo extends HttpRequestInfo {
  target: string;
}

/**
 * A reverse proxy that gives any HTTP API the `Idempotency-Key` semantics of Idem's HTTP layer:
 * the first request with a key is forwarded and its response streamed back while it is recorded;
 * a retry gets the recorded response, a duplicate in flight 409, the same key with another
 * request 422. Keys are scoped by the caller's credentials, the fingerprint covers method, path,
 * query and body. Several gateways on one shared store behave as one.
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
  readonly #agent: HttpAgent;
  readonly #request: typeof httpRequest;
  readonly #upstreamTimeoutMs: number;
  readonly #graceMs: number;
  readonly #onError: (error: unknown) => void;
  readonly #flights = new Set<Flight>();
  #drainWaiters: (() => void)[] = [];
  #closing: Promise<ShutdownReport> | undefined;

  constructor(options: GatewayOptions) {
    this.upstream = parseUpstream(options.upstream);
    this.#basePath = this.upstream.pathname.replace(/\/+$/, '');
    const secure = this.upstream.protocol === 'https:';
    const agentOptions = { keepAlive: true, maxSockets: options.maxUpstreamSockets ?? 512 };
    this.#agent = secure ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    this.#request = secure ? (httpsRequest as typeof httpRequest) : httpRequest;
    this.#upstreamTimeoutMs = options.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
    this.#graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    this.#onError =
      options.onError ??
      ((error) =>
        process.stderr.write(`idem: gateway error: ${error instanceof Error ? error.message : String(error)}\n`));
    const userObserve = options.observe;
    const metrics = this.metrics;
    this.#http = new HttpIdempotency({
      ...options,
      scope: options.scope ?? scopeOf(options.scopeHeaders),
      fingerprint: fingerprintOf(options.fingerprint),
      observe(event: HttpEvent) {
        metrics.observe(event);
        userObserve?.(event);
      },
    });
    this.server = createServer({ requestTimeout: 0 }, (req, res) => void this.handle(req, res));
    // Keep-alive clients must not reuse a socket the upstream's slowness made us close.
    this.server.keepAliveTimeout = 65_000;
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

  /** The request handler; usable on a server of your own. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    if (url.startsWith(ADMIN_PREFIX)) return this.#admin(url, req, res);
    // A response the recorder writes after the client left must not crash the process.
    res.on('error', () => {});
    const flight: Flight = { res, upstream: undefined, recording: undefined, cancelled: false };
    this.#flights.add(flight);
    try {
      if (this.#closing !== undefined) res.setHeader('connection', 'close');
      if (!url.startsWith('/')) {
        sendResponse(
          res,
          plainProblem(400, 'The gateway takes origin-form request targets (a path such as /charges).'),
        );
        return;
      }
      const method = req.method ?? 'GET';
      const header = nodeHeader(req);
      if (!this.#http.applies(method, header)) {
        this.metrics.observe({ type: 'pass' });
        await this.#forward(req, res, flight, req);
        return;
      }
      let body: Buffer = Buffer.alloc(0);
      if (hasBody(req)) {
        const read = await readBody(req, this.#http.maxBodyBytes);
        if (read === undefined) {
          this.metrics.observe({ type: 'refused' });
          sendResponse(res, requestTooLarge(this.#http.maxBodyBytes));
          return;
        }
        body = read;
      }
      const info: GatewayRequestInfo = {
        method,
        route: url.split('?')[0] ?? '/',
        target: url,
        header,
        body: body.length === 0 ? undefined : parsedBody(req, body),
        bodyBytes: declaredLength(req) ?? body.length,
      };
      if (flight.cancelled) return;
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
      if (decision.action === 'run') {
        flight.recording = decision.recording;
        recordServerResponse(res, decision.recording);
      }
      await this.#forward(req, res, flight, body);
    } catch (error) {
      // The client left while its body was read (nothing was claimed), or a bug: never leave a key held.
      if (!req.destroyed) this.#onError(error);
      await flight.recording?.abort();
      if (!res.headersSent && !res.destroyed) replaceWithProblem(res, plainProblem(502, 'The gateway failed.'));
      else res.destroy();
    } finally {
      this.#flights.delete(flight);
      if (this.#flights.size === 0) for (const wake of this.#drainWaiters.splice(0)) wake();
    }
  }

  /**
   * Stops accepting connections, lets requests in flight finish for up to `graceMs`, then cuts
   * off the rest and releases their keys, so a retry runs them again instead of waiting for a
   * lease that nobody will complete. Resolves when the server is closed; the store stays open.
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
    const left = [...this.#flights];
    await Promise.all(left.map((flight) => this.#cancel(flight)));
    await Promise.race([this.#drained(), sleep(1000)]);
    this.server.closeAllConnections();
    await closed;
    this.#agent.destroy();
    return { finished: atStart - left.length, cutOff: left.length };
  }

  #drained(): Promise<void> {
    if (this.#flights.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  async #cancel(flight: Flight): Promise<void> {
    flight.cancelled = true;
    flight.upstream?.destroy();
    await flight.recording?.abort();
    if (!flight.res.headersSent && !flight.res.destroyed) {
      replaceWithProblem(
        flight.res,
        plainProblem(
          503,
          'The gateway shut down before the upstream answered; the key was released: retry with the same key.',
        ),
      );
    } else {
      flight.res.destroy();
    }
  }

  /**
   * Sends the request to the upstream and streams its response to the client, through the
   * recorder when the key was claimed. Resolves when the exchange is over, whatever its end.
   */
  #forward(req: IncomingMessage, res: ServerResponse, flight: Flight, body: Buffer | IncomingMessage): Promise<void> {
    return new Promise<void>((resolve) => {
      const started = performance.now();
      const recording = flight.recording;
      let over = false;
      let failing = false;
      const finish = (failed: boolean) => {
        if (over) return;
        over = true;
        this.metrics.upstream(performance.now() - started, failed);
        resolve();
      };
      const fail = async (error: unknown, timedOut: boolean) => {
        if (over || failing) return;
        failing = true;
        // The key is released before the client hears of the failure, so its retry can run.
        await recording?.abort();
        if (!flight.cancelled) {
          if (!res.headersSent && !res.destroyed) {
            replaceWithProblem(
              res,
              timedOut ? upstreamTimeout(this.#upstreamTimeoutMs) : upstreamFailed(this.upstream, error),
            );
          } else {
            res.destroy();
          }
        }
        finish(true);
      };

      const upstreamReq = this.#request({
        protocol: this.upstream.protocol,
        hostname: this.upstream.hostname,
        port: this.upstream.port,
        method: req.method,
        path: `${this.#basePath}${req.url ?? '/'}`,
        headers: upstreamRequestHeaders(req, this.upstream.host, Buffer.isBuffer(body) ? body.length : undefined),
        agent: this.#agent,
      });
      flight.upstream = upstreamReq;
      let timedOut = false;
      upstreamReq.setTimeout(this.#upstreamTimeoutMs, () => {
        timedOut = true;
        upstreamReq.destroy(new Error(`no answer within ${this.#upstreamTimeoutMs} ms`));
      });
      upstreamReq.on('error', (error) => void fail(error, timedOut));
      upstreamReq.on('response', (upstreamRes) => {
        copyResponseHead(upstreamRes, res);
        // A response that arrives whole within one turn of the event loop (most do) is held and
        // sent in one write with its head; one still arriving after that turn, or larger than
        // HOLD_BYTES, streams from then on.
        let held: Buffer[] | undefined = [];
        let heldBytes = 0;
        let holding: NodeJS.Immediate | undefined;
        const send = (chunk: Buffer) => {
          if (!res.write(chunk) && !res.destroyed) {
            upstreamRes.pause();
            res.once('drain', () => upstreamRes.resume());
          }
        };
        const stream = () => {
          if (held === undefined || failing) return; // after a failure the client gets a problem instead
          clearImmediate(holding);
          const chunks = held;
          held = undefined;
          // Chunked, not Content-Length, while recording: the client must not see the response as
          // complete before the key is stored or released (see the 'end' handler).
          if (recording !== undefined) res.removeHeader('content-length');
          for (const chunk of chunks) send(chunk);
        };
        upstreamRes.on('data', (chunk: Buffer) => {
          if (held !== undefined && heldBytes + chunk.length <= HOLD_BYTES) {
            held.push(chunk);
            heldBytes += chunk.length;
            holding ??= setImmediate(stream);
            return;
          }
          stream();
          send(chunk);
        });
        upstreamRes.on('end', async () => {
          clearImmediate(holding);
          const whole = held === undefined ? undefined : held.length === 1 ? held[0] : Buffer.concat(held);
          if (recording !== undefined) {
            // Store (or release) before the body or its final chunk goes out: a client that retries
            // the moment it has the answer must find the replay or a free key, not its own request
            // in progress. A held body is recorded here, as it has not been written yet.
            if (whole !== undefined) recording.write(whole);
            recording.headFrom(res.statusCode, (name) => res.getHeader(name));
            await recording.finish();
          }
          if (whole !== undefined && whole.length > 0) {
            res.setHeader('content-length', whole.length);
            endWithBody(res, whole);
          } else {
            res.end();
          }
          finish(false);
        });
        upstreamRes.on('error', (error) => void fail(error, timedOut));
        // A client that left stops draining: keep reading, so the response is still recorded.
        res.once('close', () => upstreamRes.resume());
      });
      if (recording === undefined) {
        // Unprotected: nobody will replay this response, so a client that leaves cancels it.
        res.once('close', () => {
          if (!res.writableFinished && !over) upstreamReq.destroy();
        });
      }
      if (Buffer.isBuffer(body)) endWithBody(upstreamReq, body);
      else body.pipe(upstreamReq);
    });
  }

  async #admin(url: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = url.split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendResponse(res, plainProblem(405, `${path} answers GET only.`));
      return;
    }
    if (path === `${ADMIN_PREFIX}metrics`) {
      const text = this.metrics.render({ inFlight: this.inFlight, shuttingDown: this.closing });
      sendResponse(res, {
        status: 200,
        headers: [['content-type', 'text/plain; version=0.0.4; charset=utf-8']],
        body: Buffer.from(text),
      });
      return;
    }
    if (path === `${ADMIN_PREFIX}health`) {
      const engine = this.#http.engine;
      const report: Record<string, unknown> = {
        status: 'ok',
        store: engine.store.name,
        upstream: this.upstream.origin + this.#basePath,
        inFlight: this.inFlight,
      };
      let status = 200;
      if (this.closing) {
        report.status = 'shutting_down';
        status = 503;
      } else {
        try {
          await engine.call('health check', () => engine.store.get('idem-health', engine.now()));
        } catch (error) {
          report.status = 'store_unavailable';
          report.error = error instanceof Error ? error.message : String(error);
          status = 503;
        }
      }
      sendResponse(res, {
        status,
        headers: [['content-type', 'application/json']],
        body: Buffer.from(JSON.stringify(report)),
      });
      return;
    }
    sendResponse(
      res,
      plainProblem(404, `No such gateway endpoint; try ${ADMIN_PREFIX}health or ${ADMIN_PREFIX}metrics.`),
    );
  }
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

function scopeOf(headers: string[] | undefined): HttpIdempotencyOptions['scope'] {
  return headers === undefined ? undefined : callerScope({ headers });
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

function plainProblem(status: number, detail: string): HttpResponseData {
  const titles: Record<number, string> = {
    400: 'Bad request target',
    404: 'Not found',
    405: 'Method not allowed',
    502: 'Upstream unavailable',
    503: 'Gateway shutting down',
    504: 'Upstream timed out',
  };
  const body = {
    type: `urn:idem:problem:gateway-${status}`,
    title: titles[status] ?? 'Gateway error',
    status,
    detail,
  };
  const headers: [string, string][] = [['content-type', 'application/problem+json']];
  if (status === 503) headers.push(['retry-after', '1']);
  return { status, headers, body: Buffer.from(JSON.stringify(body)) };
}

function upstreamFailed(upstream: URL, error: unknown): HttpResponseData {
  const reason = error instanceof Error ? error.message : String(error);
  return plainProblem(
    502,
    `The upstream ${upstream.origin} did not answer (${reason}); nothing was stored and the key was released: retry with the same key.`,
  );
}

function upstreamTimeout(ms: number): HttpResponseData {
  return plainProblem(
    504,
    `The upstream sent nothing for ${ms} ms (--upstream-timeout); the key was released so that a retry with the same key runs again.`,
  );
}

/** Sends `response` on a response that may already carry the upstream's headers (not yet sent). */
function replaceWithProblem(res: ServerResponse, response: HttpResponseData): void {
  for (const name of res.getHeaderNames()) if (name !== 'connection') res.removeHeader(name);
  sendResponse(res, response);
}
