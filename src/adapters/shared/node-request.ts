import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpRequestInfo } from '../../http/http-types.js';
import { requestTooLarge } from '../../http/problem.js';
import { sendResponse } from './node-response.js';
import { type BodyRead, lengthOf, parsedBody } from './request-body.js';

/**
 * Most bytes of a refused body still read after the 413 went out, so that a client a little over
 * the limit reads its answer instead of a reset connection. Past it the connection is closed: a
 * client cannot make the server read a body of any size.
 */
export const DRAIN_CAP_BYTES = 64 * 1024;

/** Header lookup over a Node request, for `HttpRequestInfo`. */
export function nodeHeader(req: IncomingMessage): HttpRequestInfo['header'] {
  return (name) => req.headers[name];
}

/** Declared body size from Content-Length, when the client sent one. */
export function declaredLength(req: IncomingMessage): number | undefined {
  return lengthOf(req.headers['content-length']);
}

/** True when the request carries a body to read. */
export function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (declaredLength(req) ?? 0) > 0;
}

/**
 * Reads a Node request body up to `limitBytes`: the whole body; `'too-large'` when Content-Length
 * says so or as soon as the bytes pass the limit (the rest is left unread: answer with
 * `refuseTooLarge`, which drains a little of it); or `'aborted'` when the client went away (or
 * broke the framing) before its body ended. Never rejects. The one body reader of every Node
 * adapter and the gateway.
 */
export function readNodeBody(req: IncomingMessage, limitBytes: number): Promise<BodyRead<Buffer>> {
  if ((declaredLength(req) ?? 0) > limitBytes) return Promise.resolve('too-large');
  if (!hasBody(req) || req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (result: BodyRead<Buffer>) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onGone);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        req.pause();
        stop('too-large');
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => stop(Buffer.concat(chunks, size));
    const onGone = () => stop('aborted');
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('close', onGone);
  });
}

/**
 * Answers 413 for a body over `limitBytes` (the problem table's `request-too-large`), then
 * drains what the client still sends (see `drainRefusedBody`).
 */
export function refuseTooLarge(req: IncomingMessage, res: ServerResponse, limitBytes: number): void {
  sendResponse(res, requestTooLarge(limitBytes, declaredLength(req)));
  drainRefusedBody(req);
}

/**
 * Reads and discards what the client still sends of a refused body, up to `DRAIN_CAP_BYTES`;
 * past that the connection is closed. A body that ends within the cap leaves the connection
 * open for the client's next request. For adapters whose framework sends the 413 itself.
 */
export function drainRefusedBody(req: IncomingMessage): void {
  if (req.complete) return;
  let drained = 0;
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_CAP_BYTES) req.socket.destroy();
  });
  req.on('error', () => {});
  req.resume();
}

/** A request on which a body parser (Express's, Nest's, Koa's) may have left what it read. */
export type ParsedRequest = IncomingMessage & { body?: unknown };

/**
 * Reads the body when no parser did, so that it can be fingerprinted, and leaves it on
 * `req.body` (parsed when it is JSON); parsers that run later see a consumed stream. Resolves
 * the body size in bytes (Content-Length when a parser read it), `'too-large'` or `'aborted'`
 * as `readNodeBody` does. `onBytes` gets the raw bytes it read, if any.
 */
export async function readUnparsedBody(
  req: ParsedRequest,
  limitBytes: number,
  onBytes?: (bytes: Buffer) => void,
): Promise<number | undefined | 'too-large' | 'aborted'> {
  if (!bodyLeftToRead(req)) return declaredLength(req);
  const body = await readNodeBody(req, limitBytes);
  if (typeof body === 'string') return body;
  req.body = parsedBody(req.headers['content-type'], body);
  onBytes?.(body);
  return body.length;
}

/**
 * True when `readUnparsedBody` has a body to read: no parser read it and it has not ended. When
 * false, the body size is `declaredLength(req)` and an adapter can skip the await (a microtask
 * and a promise per request).
 */
export function bodyLeftToRead(req: ParsedRequest): boolean {
  // Cheapest first: behind a body parser the stream has ended, and `unparsed` lists keys.
  return !req.readableEnded && hasBody(req) && unparsed(req.body);
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
