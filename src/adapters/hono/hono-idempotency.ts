import type { Context, MiddlewareHandler, Next } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { matchedRoutes } from 'hono/route';
import { HttpIdempotency } from '../../http/http-idempotency.js';
import type { HttpRequestInfo } from '../../http/http-types.js';
import { requestTooLarge } from '../../http/problem.js';
import type { ResponseRecording } from '../../http/response-recording.js';
import { setPassHeaders } from '../shared/pass-headers.js';
import { recordedWebStream } from '../shared/recorded-stream.js';
import { parsedBody } from '../shared/request-body.js';
import type { AdapterOptions } from '../shared/route-options.js';
import { readWebBody, targetOf, toWebResponse, webDeclaredLength, webHeader } from '../shared/web-request.js';

export interface HonoIdempotencyOptions extends AdapterOptions<Context> {
  /**
   * The route of a request, for scope and fingerprint. Default: the pattern of the route this
   * middleware is mounted on (`/charges/:id`); when it is mounted under a wildcard
   * (`app.use('/api/*', ...)`), the pattern of the first matched route after it that is not a
   * wildcard; else the path without the query.
   */
  route?: (c: Context) => string;
}

/**
 * Hono middleware for the `Idempotency-Key` header. It runs on any runtime Hono runs on: it
 * reads a clone of the Web `Request` (so the handler still gets the body), and records the
 * `Response` body as it streams, as every adapter does (see `recorded-stream.ts`): the client
 * gets each chunk as the handler produces it, and the end of the body once the record is stored,
 * so a retry sent right after finds it. A client that goes away mid-body does not stop the
 * recording: a handler that finishes after its client gave up still leaves its answer for the
 * retry. The body is read at the handler's pace; what a slow client has not read yet is buffered.
 *
 * A handler that throws releases the key, so a retry runs again; an `HTTPException` is an answer
 * like any other, stored under the cache policy.
 *
 * @example
 * ```ts
 * import { Hono } from 'hono';
 * import { idempotency } from 'idem/hono';
 * import { SqliteStore } from 'idem/sqlite';
 *
 * const app = new Hono();
 * app.post('/charges', idempotency({ store: new SqliteStore() }), async (c) => {
 *   return c.json(await createCharge(await c.req.json()), 201);
 * });
 * ```
 */
export function idempotency(options: HonoIdempotencyOptions): MiddlewareHandler {
  const http = new HttpIdempotency(options);
  const routeOf = options.route ?? defaultRoute;
  return async function idempotency(c: Context, next: Next): Promise<Response | undefined> {
    const header = webHeader(c.req.raw);
    if (!http.applies(c.req.raw.method, header)) return passOn(next);
    const info = await requestInfoOrRefusal(c, http, header, routeOf);
    if (info instanceof Response) return info;
    const decision = await http.begin(info);
    if (decision.action === 'respond') return toWebResponse(decision.response);
    if (decision.action === 'pass') {
      await next();
      setPassHeaders(decision, (name, value) => c.header(name, value));
      return undefined;
    }
    await runAndRecord(c, next, decision.recording);
    return undefined;
  };
}

/** Lets the request through untouched. */
async function passOn(next: Next): Promise<undefined> {
  await next();
  return undefined;
}

/**
 * The request as the store knows it, read from a clone of its body; or the answer that refuses
 * it, when the body is too large or broke off.
 */
async function requestInfoOrRefusal(
  c: Context,
  http: HttpIdempotency,
  header: HttpRequestInfo['header'],
  routeOf: (c: Context) => string,
): Promise<HttpRequestInfo | Response> {
  const request = c.req.raw;
  const declared = webDeclaredLength(request);
  const bytes = await readWebBody(request, http.maxBodyBytes);
  if (bytes === 'too-large') return toWebResponse(requestTooLarge(http.maxBodyBytes, declared));
  // The body broke off: nothing was claimed, and the client is gone.
  if (bytes === 'aborted') return new Response(null, { status: 400 });
  return {
    method: request.method,
    route: routeOf(c),
    url: targetOf(request.url),
    header,
    body: bytes.length === 0 ? undefined : parsedBody(request.headers.get('content-type'), bytes),
    bodyBytes: declared ?? bytes.length,
  };
}

/**
 * Runs the handler and records its answer: the head now, the body as it streams. A handler that
 * threw (whether or not Hono's error handler answered for it) releases the key instead.
 */
async function runAndRecord(c: Context, next: Next, recording: ResponseRecording): Promise<void> {
  // The client went away: keep the claim (the handler is most likely still running) but stop
  // extending it, as the node:http recorder does.
  const abandon = () => recording.abandon();
  c.req.raw.signal?.addEventListener('abort', abandon, { once: true });
  try {
    await next();
  } catch (error) {
    await recording.abort();
    throw error;
  }
  if (c.error !== undefined && !(c.error instanceof HTTPException)) {
    // The handler threw and Hono's error handler answered for it: the work may have half
    // happened, so the key is released and a retry runs again, whatever the policy.
    await recording.abort();
    return;
  }
  const response = c.res;
  recording.head(response.status, response.headers);
  if (response.body === null) {
    await recording.finish();
    return;
  }
  // Replace, not merge: the new Response carries the same status and headers.
  c.res = undefined;
  c.res = new Response(recordedWebStream(response.body, recording), response);
}

/**
 * The pattern of the route this middleware runs for. A wildcard mount (`*`, `/api/*`) says
 * nothing about the operation, so the first matched route after it that is not a wildcard is
 * taken (the handler, in the usual layout); failing that, the path, which is never too broad.
 */
function defaultRoute(c: Context): string {
  const routes = matchedRoutes(c);
  for (let i = c.req.routeIndex; i < routes.length; i++) {
    const path = routes[i]?.path;
    if (path !== undefined && !path.endsWith('*')) return path;
  }
  return c.req.path;
}
