import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, IdempotencyError } from '../../core/errors.js';
import { HttpIdempotency, type HttpIdempotencyOptions } from '../../http/http-idempotency.js';
import type { HttpRequestInfo } from '../../http/http-types.js';
import { problemResponse } from '../../http/problem.js';
import {
  declaredLength,
  hasBody,
  nodeHeader,
  parsedBody,
  readBody,
  recordServerResponse,
  sendResponse,
} from '../node-http/server-response.js';

/** The parts of an Express request the middleware reads; Express 4 and 5 both fit. */
export interface ExpressRequestLike extends IncomingMessage {
  body?: unknown;
  path: string;
  originalUrl?: string;
  baseUrl?: string;
  route?: { path?: unknown };
}

export type ExpressIdempotencyOptions = HttpIdempotencyOptions;

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
export function idempotency(options: ExpressIdempotencyOptions) {
  const http = new HttpIdempotency(options);
  return async function idempotency(
    req: ExpressRequestLike,
    res: ServerResponse,
    next: (error?: unknown) => void,
  ): Promise<void> {
    try {
      if (!http.applies(req.method ?? 'GET', nodeHeader(req))) return next();
      let bodyBytes = declaredLength(req);
      if (unparsed(req.body) && hasBody(req) && !req.readableEnded) {
        // No body parser ran before us: read the body here so it can be fingerprinted, and leave
        // it on req.body (parsed when it is JSON); parsers that run later see a consumed stream.
        const body = await readBody(req, http.maxBodyBytes).catch(() => null);
        if (body === null) {
          // The client went away mid-body: nothing was claimed and no one is left to answer.
          res.destroy();
          return;
        }
        if (body === undefined) {
          sendResponse(res, problemResponse(tooLarge(http.maxBodyBytes)));
          return;
        }
        bodyBytes = body.length;
        req.body = parsedBody(req, body);
      }
      const info: HttpRequestInfo = {
        method: req.method ?? 'POST',
        route: routeOf(req),
        url: req.originalUrl ?? req.url,
        header: nodeHeader(req),
        body: req.body,
        bodyBytes,
      };
      const decision = await http.begin(info);
      if (decision.action === 'respond') {
        sendResponse(res, decision.response);
        return;
      }
      if (decision.action === 'run') recordServerResponse(res, decision.recording);
      next();
    } catch (error) {
      next(error);
    }
  };
}

/**
 * True when no parser read the body: Express 5 leaves `req.body` undefined, but Express 4's
 * parsers set it to `{}` even for a content type they skip, which would fingerprint every such
 * body as the same empty object.
 */
function unparsed(body: unknown): boolean {
  if (body === undefined) return true;
  return (
    typeof body === 'object' &&
    body !== null &&
    Object.getPrototypeOf(body) === Object.prototype &&
    Object.keys(body).length === 0
  );
}

function routeOf(req: ExpressRequestLike): string {
  const pattern = req.route?.path;
  if (typeof pattern === 'string') return `${req.baseUrl ?? ''}${pattern}`;
  return `${req.baseUrl ?? ''}${req.path}`;
}

function tooLarge(limit: number): IdempotencyError {
  return new IdempotencyError(
    ErrorCode.REQUEST_TOO_LARGE,
    `[idem] the request body is over the limit of ${limit} bytes; send a smaller body.`,
  );
}
