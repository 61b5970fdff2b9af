import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpIdempotency } from '../../http/http-idempotency.js';
import type { HttpRequestInfo } from '../../http/http-types.js';
import {
  bodyLeftToRead,
  declaredLength,
  nodeHeader,
  readUnparsedBody,
  refuseTooLarge,
} from '../shared/node-request.js';
import { sendResponse } from '../shared/node-response.js';
import { recordServerResponse } from '../shared/node-response-recorder.js';
import { setPassHeaders } from '../shared/pass-headers.js';
import type { AdapterOptions } from '../shared/route-options.js';

/**
 * The parts of an Express request the middleware reads; Express 4 and 5 both fit. It names no
 * `body` and no `params` on purpose: Express infers a route's request types from every handler
 * on it, so a `body?: unknown` here would turn `req.body` into `unknown` in the handler after ours.
 */
export interface ExpressRequestLike extends IncomingMessage {
  path: string;
  originalUrl?: string;
  baseUrl?: string;
  route?: { path?: unknown };
}

/** The middleware's options; `route` defaults to the matched route pattern with its router's mount path. */
export type ExpressIdempotencyOptions = AdapterOptions<ExpressRequestLike>;

/**
 * The middleware `idempotency()` returns. It fits `app.use` and any route, and leaves the
 * route's own `req.params` and `req.body` types as Express infers them.
 */
export type ExpressIdempotencyMiddleware = (
  req: ExpressRequestLike,
  res: ServerResponse,
  next: (error?: unknown) => void,
) => Promise<void>;

/**
 * Express middleware (Express 4 and 5) for the `Idempotency-Key` header. Mount it after your
 * body parser, on the routes to protect, or app-wide.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { idempotency } from 'idem/express';
 * import { SqliteStore } from 'idem/sqlite';
 *
 * const app = express();
 * app.use(express.json());
 * app.post('/charges', idempotency({ store: new SqliteStore() }), (req, res) => {
 *   res.status(201).json(createCharge(req.body));
 * });
 * ```
 */
export function idempotency(options: ExpressIdempotencyOptions): ExpressIdempotencyMiddleware {
  const http = new HttpIdempotency(options);
  const routeOfRequest = options.route ?? routeOf;
  return async function idempotency(req, res, next) {
    try {
      const header = nodeHeader(req);
      if (!http.applies(req.method ?? 'GET', header)) return next();
      // Behind a body parser (the usual case) the body is read already: no await for it.
      const bodyBytes = bodyLeftToRead(req) ? await readBodyOrRefuse(req, res, http.maxBodyBytes) : declaredLength(req);
      if (bodyBytes === 'answered') return;
      const info: HttpRequestInfo = {
        method: req.method ?? 'POST',
        route: routeOfRequest(req),
        url: req.originalUrl ?? req.url,
        header,
        body: parsedBodyOf(req),
        bodyBytes,
      };
      const decision = await http.begin(info);
      if (decision.action === 'respond') {
        sendResponse(res, decision.response);
        return;
      }
      if (decision.action === 'run') recordServerResponse(res, decision.recording);
      else setPassHeaders(decision, (name, value) => res.setHeader(name, value));
      next();
    } catch (error) {
      next(error);
    }
  };
}

/**
 * Reads a body no parser read: its size, or `'answered'` when it was too large (413 sent) or the
 * client went away mid-body (nothing was claimed and no one is left to answer).
 */
async function readBodyOrRefuse(
  req: ExpressRequestLike,
  res: ServerResponse,
  limitBytes: number,
): Promise<number | undefined | 'answered'> {
  const bodyBytes = await readUnparsedBody(req, limitBytes);
  if (bodyBytes === 'aborted') res.destroy();
  else if (bodyBytes === 'too-large') refuseTooLarge(req, res, limitBytes);
  else return bodyBytes;
  return 'answered';
}

/** What the body parser mounted before us left on the request, if any. */
function parsedBodyOf(req: ExpressRequestLike): unknown {
  return (req as ExpressRequestLike & { body?: unknown }).body;
}

function routeOf(req: ExpressRequestLike): string {
  const pattern = req.route?.path;
  if (typeof pattern === 'string') return `${req.baseUrl ?? ''}${pattern}`;
  return `${req.baseUrl ?? ''}${req.path}`;
}
