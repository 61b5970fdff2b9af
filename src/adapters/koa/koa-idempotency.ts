import { Readable } from 'node:stream';
import type { Context, Next } from 'koa';
import { HttpIdempotency } from '../../http/http-idempotency.js';
import type { HttpResponseData } from '../../http/http-types.js';
import { requestTooLarge } from '../../http/problem.js';
import type { ResponseRecording } from '../../http/response-recording.js';
import { hasClientErrorStatus } from '../shared/client-errors.js';
import { groupHeaders } from '../shared/header-groups.js';
import { declaredLength, drainRefusedBody, nodeHeader, readNodeBody } from '../shared/node-request.js';
import { recordServerResponse } from '../shared/node-response-recorder.js';
import { setPassHeaders } from '../shared/pass-headers.js';
import { recordedReadable } from '../shared/recorded-stream.js';
import { parsedBody } from '../shared/request-body.js';
import type { AdapterOptions } from '../shared/route-options.js';

export interface KoaIdempotencyOptions extends AdapterOptions<Context> {
  /**
   * The route of a request, for scope and fingerprint. Default: the pattern `@koa/router`
   * matched (`ctx._matchedRoute`, e.g. `/charges/:id`), else the path.
   */
  route?: (ctx: Context) => string;
}

/** Where the middleware leaves the body it read: the fields body parsers for Koa use. */
interface RequestWithBody {
  body?: unknown;
  rawBody?: Buffer;
}

/** Statuses Koa answers without a body, whatever `ctx.body` holds. */
const EMPTY_STATUSES = new Set([204, 205, 304]);

/**
 * Koa 3 middleware for the `Idempotency-Key` header. Use it app-wide or on the router routes to
 * protect (`router.post('/charges', idempotency(options), handler)`); each call has its own
 * options, so one route can require keys while another keeps them optional.
 *
 * Koa has no body parser: when a request that carries a key has a body no parser has read yet,
 * the middleware reads it (up to `maxBodyBytes`, else 413) and leaves it on
 * `ctx.request.body`, parsed when it is JSON and as a Buffer otherwise, with the bytes on
 * `ctx.request.rawBody`. A body parser mounted before the middleware is used as it is.
 *
 * The response is recorded from `ctx.status`, the headers and `ctx.body` once the downstream
 * middleware returns (a string, Buffer, JSON value, or a stream recorded as it flows), so
 * middleware mounted before this one sees a replay as it sees a first answer. A thrown error
 * with a 4xx status is recorded from the answer Koa gives it; any other thrown error releases
 * the key. A response written straight to `ctx.res` with `ctx.respond = false` cannot be seen:
 * its key is released.
 *
 * @example
 * ```ts
 * import Koa from 'koa';
 * import Router from '@koa/router';
 * import { idempotency } from 'idem/koa';
 * import { SqliteStore } from 'idem/sqlite';
 *
 * const store = new SqliteStore();
 * const router = new Router();
 * router.post('/charges', idempotency({ store, required: true }), async (ctx) => {
 *   ctx.status = 201;
 *   ctx.body = await createCharge(ctx.request.body);
 * });
 * new Koa().use(router.routes()).listen(3000);
 * ```
 */
export function idempotency(options: KoaIdempotencyOptions) {
  const http = new HttpIdempotency(options);
  const routeOf = options.route ?? defaultRoute;
  return async function idempotency(ctx: Context, next: Next): Promise<void> {
    const header = nodeHeader(ctx.req);
    if (!http.applies(ctx.method, header)) return next();
    const bodyBytes = await readBodyOrRefuse(ctx, http.maxBodyBytes);
    if (bodyBytes === 'refused') return;
    const decision = await http.begin({
      method: ctx.method,
      route: routeOf(ctx),
      url: ctx.originalUrl,
      header,
      body: (ctx.request as Context['request'] & RequestWithBody).body,
      bodyBytes,
    });
    if (decision.action === 'respond') {
      respond(ctx, decision.response);
      return;
    }
    if (decision.action === 'pass') {
      setPassHeaders(decision, (name, value) => ctx.set(name, value));
      return next();
    }
    await runAndRecord(ctx, next, decision.recording);
  };
}

/**
 * Reads the body onto `ctx.request` when no body parser has read it yet. Returns the body's size
 * in bytes (undefined when unknown), or `'refused'` when the request was answered with a 413 or
 * dropped because its client went away.
 */
async function readBodyOrRefuse(ctx: Context, maxBodyBytes: number): Promise<number | undefined | 'refused'> {
  const request = ctx.request as Context['request'] & RequestWithBody;
  const declared = declaredLength(ctx.req);
  if (request.body !== undefined) return declared;
  const body = await readNodeBody(ctx.req, maxBodyBytes);
  if (body === 'aborted') {
    // The client went away mid-body: nothing was claimed and no one is left to answer.
    ctx.respond = false;
    ctx.req.destroy();
    return 'refused';
  }
  if (body === 'too-large') {
    respond(ctx, requestTooLarge(maxBodyBytes, declared));
    drainRefusedBody(ctx.req);
    return 'refused';
  }
  if (body.length === 0) return declared;
  request.rawBody = body;
  request.body = parsedBody(ctx.get('content-type'), body);
  return body.length;
}

/**
 * Runs the downstream middleware and records the answer Koa gives. A thrown error with a 4xx
 * status is recorded as Koa sends it; any other thrown error, or a response Koa does not send
 * itself (`ctx.respond = false`), releases the key.
 */
async function runAndRecord(ctx: Context, next: Next, recording: ResponseRecording): Promise<void> {
  ctx.res.once('close', () => recording.abandon());
  try {
    await next();
  } catch (error) {
    if (hasClientErrorStatus(error) && ctx.writable) recordServerResponse(ctx.res, recording);
    else await recording.abort();
    throw error;
  }
  if (ctx.respond === false) {
    await recording.abort();
    return;
  }
  await record(ctx, recording);
}

/**
 * Records the answer Koa is about to send, as Koa will serialize it. A complete body is stored
 * before Koa sends it, so a client that got the answer and retries finds it stored, and a
 * handler that finishes after its client gave up still has its answer stored for the retry.
 */
async function record(ctx: Context, recording: ResponseRecording): Promise<void> {
  const headers = Object.entries(ctx.response.headers);
  const body: unknown = ctx.body;
  if (EMPTY_STATUSES.has(ctx.status) || body === null) {
    recording.head(ctx.status, headers);
  } else if (body === undefined) {
    // Koa answers a missing body with the status message, as text.
    recording.head(ctx.status, [...headers, ['content-type', 'text/plain; charset=utf-8']]);
    recording.write(ctx.message || String(ctx.status));
  } else if (typeof body === 'string' || Buffer.isBuffer(body)) {
    recording.head(ctx.status, headers);
    recording.write(body);
  } else {
    const stream = asReadable(body);
    recording.head(ctx.status, headers);
    if (stream !== undefined) {
      ctx.body = recordedReadable(stream, recording);
      return;
    }
    recording.write(JSON.stringify(body));
  }
  await recording.finish();
}

/** The body as a Node stream when Koa would stream it, converted the way Koa converts it. */
function asReadable(body: unknown): Readable | undefined {
  if (body instanceof Readable) return body;
  if (typeof (body as Readable).pipe === 'function') return new Readable().wrap(body as NodeJS.ReadableStream);
  if (body instanceof ReadableStream) return Readable.from(body);
  if (body instanceof Blob) return Readable.from(body.stream());
  if (body instanceof Response) return Readable.from(body.body ?? []);
  return undefined;
}

function respond(ctx: Context, response: HttpResponseData): void {
  ctx.status = response.status;
  for (const [name, value] of groupHeaders(response.headers)) ctx.set(name, value);
  const { body } = response;
  ctx.body = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

function defaultRoute(ctx: Context): string {
  const matched = (ctx as Context & { _matchedRoute?: unknown })._matchedRoute;
  return typeof matched === 'string' ? matched : ctx.path;
}
