import type { Context, MiddlewareHandler, Next } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { matchedRoutes } from 'hono/route';
import { HttpIdempotency, type HttpIdempotencyOptions } from '../../http/http-idempotency.js';
import type { HttpRequestInfo, HttpResponseData } from '../../http/http-types.js';
import { requestTooLarge } from '../../http/problem.js';
import type { ResponseRecording } from '../../http/response-recording.js';

export interface HonoIdempotencyOptions extends HttpIdempotencyOptions {
  /**
   * The route of a request, for scope and fingerprint. Default: the pattern of the route this
   * middleware is mounted on (`/charges/:id`); when it is mounted under a wildcard
   * (`app.use('/api/*', ...)`), the pattern of the first matched route after it that is not a
   * wildcard; else the path without the query.
   */
  route?: (c: Context) => string;
}

/** Statuses whose responses carry no body; a Response refuses one. */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/**
 * Hono middleware for the `Idempotency-Key` header. It runs on any runtime Hono runs on: it
 * reads a clone of the Web `Request` (so the handler still gets the body), and records the
 * `Response` through a tee of its body: the client gets each chunk as the handler produces it,
 * and the end of the body once the record is stored, so a retry sent right after finds it.
 * The recorded branch reads on when the client goes away (or never reads), so a handler that
 * finishes after its client gave up still leaves its answer for the retry. The body is read at
 * the handler's pace; what a slow client has not read yet is buffered.
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
    const request = c.req.raw;
    const header = (name: string) => request.headers.get(name) ?? undefined;
    if (!http.applies(request.method, header)) {
      await next();
      return undefined;
    }
    const declared = declaredLength(request);
    if (declared !== undefined && declared > http.maxBodyBytes) return toResponse(requestTooLarge(http.maxBodyBytes));
    const bytes = await readBody(request, http.maxBodyBytes);
    if (bytes === undefined) return toResponse(requestTooLarge(http.maxBodyBytes));
    const info: HttpRequestInfo = {
      method: request.method,
      route: routeOf(c),
      url: targetOf(request.url),
      header,
      body: bytes.length === 0 ? undefined : parsedBody(request, bytes),
      bodyBytes: declared ?? bytes.length,
    };
    const decision = await http.begin(info);
    if (decision.action === 'respond') return toResponse(decision.response);
    if (decision.action === 'pass') {
      await next();
      return undefined;
    }

    const { recording } = decision;
    // The client went away: keep the claim (the handler is most likely still running) but stop
    // extending it, as the node:http recorder does.
    const abandon = () => recording.abandon();
    request.signal?.addEventListener('abort', abandon, { once: true });
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
      return undefined;
    }
    const response = c.res;
    recording.head(response.status, response.headers);
    if (response.body === null) {
      await recording.finish();
      return undefined;
    }
    const [toClient, toRecord] = response.body.tee();
    const recorded = record(toRecord, recording);
    // Replace, not merge: the new Response carries the same status and headers.
    c.res = undefined;
    c.res = new Response(clientStream(toClient, recorded, abandon), response);
    return undefined;
  };
}

/** Reads the recorded branch to its end; the client's branch flows on at its own pace. */
async function record(stream: ReadableStream<Uint8Array>, recording: ResponseRecording): Promise<void> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      recording.write(value);
    }
  } catch {
    // The body failed half way: the client got a broken response, so a retry must run again.
    await recording.abort();
    return;
  }
  await recording.finish();
}

/**
 * The client's branch, passed on as it comes, except its end: that waits until the record is
 * stored, so a client that saw the whole response and retries at once finds it stored, not
 * still in progress. A client that goes away cancels only its own branch (`onCancel`).
 */
function clientStream(
  stream: ReadableStream<Uint8Array>,
  recorded: Promise<void>,
  onCancel: () => void,
): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (!done) {
          controller.enqueue(value);
          return;
        }
        await recorded;
        controller.close();
      } catch (error) {
        controller.error(error);
      }
    },
    cancel(reason) {
      onCancel();
      return reader.cancel(reason);
    },
  });
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

/** Path and query of an absolute URL (`/charges?currency=eur`). */
function targetOf(url: string): string {
  const path = url.indexOf('/', url.indexOf('//') + 2);
  return path === -1 ? '/' : url.slice(path);
}

function declaredLength(request: Request): number | undefined {
  const length = request.headers.get('content-length');
  if (length === null) return undefined;
  const bytes = Number(length);
  return Number.isSafeInteger(bytes) && bytes >= 0 ? bytes : undefined;
}

/** Reads a clone of the body, giving up past `limit` bytes (resolves `undefined` then). */
async function readBody(request: Request, limit: number): Promise<Uint8Array | undefined> {
  if (request.body === null) return new Uint8Array(0);
  const body = request.clone().body;
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/** A JSON body parsed, as handlers and a custom `scope` or `fingerprint` expect; else its bytes. */
function parsedBody(request: Request, bytes: Uint8Array): unknown {
  if (!/\bjson\b/i.test(request.headers.get('content-type') ?? '')) return bytes;
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return bytes;
  }
}

function toResponse(response: HttpResponseData): Response {
  const body = NULL_BODY_STATUSES.has(response.status) ? null : response.body;
  return new Response(body, { status: response.status, headers: response.headers });
}
