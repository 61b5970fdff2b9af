import { IncomingMessage, type ServerResponse } from 'node:http';
import type { HttpDecision } from '../../http/http-idempotency.js';
import { HttpIdempotency } from '../../http/http-idempotency.js';
import type { ResponseRecording } from '../../http/response-recording.js';
import { declaredLength, nodeHeader, readNodeBody, refuseTooLarge } from '../shared/node-request.js';
import { sendResponse } from '../shared/node-response.js';
import { recordServerResponse } from '../shared/node-response-recorder.js';
import { setPassHeaders } from '../shared/pass-headers.js';
import { parsedBody } from '../shared/request-body.js';
import type { AdapterOptions } from '../shared/route-options.js';

export interface NodeIdempotencyOptions extends AdapterOptions<IncomingMessage> {
  /** The route of a request, for scope and fingerprint. Default: the path without the query. */
  route?: (req: IncomingMessage) => string;
  /**
   * Called when the handler throws or rejects, after the key was released and a bare 500 sent
   * (if nothing was sent yet). The wrapper never rejects, so a `createServer(withIdempotency(...))`
   * process is not brought down by one failing request. Default: logs the error to stderr.
   */
  onError?: (error: unknown, req: IncomingMessage) => void;
}

/** A request whose body was read by the wrapper: the bytes, and the same bytes as a readable stream. */
export interface BufferedRequest extends IncomingMessage {
  /** The raw body bytes, read before the handler ran. */
  rawBody: Buffer;
}

type Handler = (req: BufferedRequest, res: ServerResponse) => unknown;

/**
 * Wraps a plain `node:http` handler. The body is read first (to fingerprint it) and handed to
 * the handler as a fresh readable request carrying the same bytes, plus `req.rawBody`.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { withIdempotency } from 'idem/node';
 * import { SqliteStore } from 'idem/sqlite';
 *
 * createServer(withIdempotency(async (req, res) => {
 *   res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify(createCharge(req.rawBody)));
 * }, { store: new SqliteStore() })).listen(3000);
 * ```
 */
export function withIdempotency(handler: Handler, options: NodeIdempotencyOptions) {
  const http = new HttpIdempotency(options);
  const routeOf = options.route ?? ((req: IncomingMessage) => (req.url ?? '/').split('?')[0] ?? '/');
  const onError =
    options.onError ??
    ((error: unknown, req: IncomingMessage) =>
      console.error(`[idem] handler for ${req.method} ${req.url} failed:`, error));
  const fail = (error: unknown, req: IncomingMessage, res: ServerResponse) => {
    if (!res.headersSent) {
      res.statusCode = 500;
      res.end();
    }
    onError(error, req);
  };
  /** Runs the handler on `handed`; when it throws, releases the key, then answers and reports the error. */
  const runHandler = async (
    req: IncomingMessage,
    res: ServerResponse,
    handed: BufferedRequest,
    recording?: ResponseRecording,
  ): Promise<void> => {
    try {
      await handler(handed, res);
    } catch (error) {
      if (recording !== undefined) await recording.abort();
      fail(error, req, res);
    }
  };
  return async function idempotentHandler(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const header = nodeHeader(req);
    if (!http.applies(req.method ?? 'GET', header)) return runHandler(req, res, req as BufferedRequest);
    const body = await readBodyOrRefuse(req, res, http.maxBodyBytes);
    if (body === undefined) return;
    const decision = await http.begin({
      method: req.method ?? 'POST',
      route: routeOf(req),
      url: req.url,
      header,
      body: body.length === 0 ? undefined : parsedBody(req.headers['content-type'], body),
      bodyBytes: declaredLength(req) ?? body.length,
    });
    if (decision.action === 'respond') {
      sendResponse(res, decision.response);
      return;
    }
    const recording = recordingOf(decision, res);
    await runHandler(req, res, replayableRequest(req, body), recording);
  };
}

/**
 * Reads the whole body. Returns undefined when the request was refused instead: answered with a
 * 413, or dropped because its client went away.
 */
async function readBodyOrRefuse(
  req: IncomingMessage,
  res: ServerResponse,
  maxBodyBytes: number,
): Promise<Buffer | undefined> {
  const body = await readNodeBody(req, maxBodyBytes);
  if (body === 'aborted') {
    // The client went away (or broke the framing) before its body arrived: nothing was
    // claimed and no one is left to answer. Rejecting would crash a server wired as in the example of `withIdempotency`.
    res.destroy();
    return undefined;
  }
  if (body === 'too-large') {
    refuseTooLarge(req, res, maxBodyBytes);
    return undefined;
  }
  return body;
}

/** A new IncomingMessage on the same socket that yields `body` again, with the same head. */
function replayableRequest(req: IncomingMessage, body: Buffer): BufferedRequest {
  const copy = new IncomingMessage(req.socket) as BufferedRequest;
  copy.method = req.method;
  copy.url = req.url;
  copy.headers = req.headers;
  copy.rawHeaders = req.rawHeaders;
  copy.httpVersion = req.httpVersion;
  copy.httpVersionMajor = req.httpVersionMajor;
  copy.httpVersionMinor = req.httpVersionMinor;
  copy.rawBody = body;
  // The parser never sees this copy, so nothing else marks it complete; without this, reading it
  // to the end auto-destroys it as an aborted request, which destroys the shared socket.
  copy.complete = true;
  if (body.length > 0) copy.push(body);
  copy.push(null);
  return copy;
}

/** Records the response of a claimed request; for one that passes, sets the headers it asks for instead. */
function recordingOf(
  decision: Exclude<HttpDecision, { action: 'respond' }>,
  res: ServerResponse,
): ResponseRecording | undefined {
  if (decision.action === 'pass') {
    setPassHeaders(decision, (name, value) => res.setHeader(name, value));
    return undefined;
  }
  recordServerResponse(res, decision.recording);
  return decision.recording;
}
