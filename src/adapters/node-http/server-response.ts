import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpRequestInfo, HttpResponseData } from '../../http/http-types.js';
import type { ResponseRecording } from '../../http/response-recording.js';

/** Sends a stored or refusal response on a plain Node response. */
export function sendResponse(res: ServerResponse, response: HttpResponseData): void {
  res.statusCode = response.status;
  for (const [name, value] of response.headers) res.appendHeader(name, value);
  res.setHeader('content-length', response.body.length);
  res.end(response.body);
}

/**
 * Records everything the handler writes on `res`, as it streams out, and stores it when the
 * handler ends the response. Every framework that writes to a Node `ServerResponse` (Express,
 * NestJS on Express, plain node:http, the gateway) is recorded by this one function.
 *
 * The end of the response waits for the store: a client that got the whole answer and retries
 * at once finds it stored, not still in progress.
 *
 * A client that disconnects before the handler ends does not release the key at once: the
 * handler is most likely still running, and a retry let in now would run it twice. The
 * heartbeat stops instead; if the handler then ends, its response is stored and the retry gets
 * it; if it never ends, the lease runs out and a retry may take over.
 */
export function recordServerResponse(res: ServerResponse, recording: ResponseRecording): void {
  const recorded = res as Recorded;
  recorded[STATE] = {
    recording,
    write: res.write,
    end: res.end,
    writeHead: res.writeHead,
    headHeaders: [],
    ended: false,
  };
  // Shared functions that read their state from the response: nothing is allocated per request
  // but the state itself, and the response's own (or a framework's) methods are still called.
  res.writeHead = recordedWriteHead as ServerResponse['writeHead'];
  res.write = recordedWrite as ServerResponse['write'];
  res.end = recordedEnd as ServerResponse['end'];
  res.on('close', abandonUnlessEnded); // 'close' comes once; on() spares once()'s wrapper
}

const STATE = Symbol('idem.recording');
type HeaderValue = string | number | readonly string[] | undefined;
type Recorded = ServerResponse & {
  [STATE]: {
    recording: ResponseRecording;
    write: ServerResponse['write'];
    end: ServerResponse['end'];
    writeHead: ServerResponse['writeHead'];
    /** Headers given to writeHead() never show in getHeaders(); kept here for the record. */
    headHeaders: [string, HeaderValue][];
    ended: boolean;
  };
};

function capture(recording: ResponseRecording, chunk: unknown, encoding: unknown): void {
  if (typeof chunk === 'string') {
    recording.write(Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'));
  } else if (chunk instanceof Uint8Array) {
    recording.write(chunk);
  }
}

function recordedWriteHead(this: Recorded, status: number, reason?: unknown, headers?: unknown): ServerResponse {
  const given = typeof reason === 'object' && reason !== null ? reason : headers;
  if (Array.isArray(given)) {
    // A flat [name, value, name, value] list, or [[name, value], ...].
    this[STATE].headHeaders = Array.isArray(given[0])
      ? (given as [string, string][])
      : given.flatMap((item, i) => (i % 2 === 0 ? [[String(item), given[i + 1] as string] as [string, string]] : []));
  } else if (typeof given === 'object' && given !== null) {
    this[STATE].headHeaders = Object.entries(given as Record<string, HeaderValue>);
  }
  return (this[STATE].writeHead as (...args: unknown[]) => ServerResponse).call(this, status, reason, headers);
}

function recordedWrite(this: Recorded, chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
  capture(this[STATE].recording, chunk, encoding);
  return (this[STATE].write as (...args: unknown[]) => boolean).call(this, chunk, encoding, callback);
}

function recordedEnd(this: Recorded, chunk?: unknown, encoding?: unknown, callback?: unknown): ServerResponse {
  const state = this[STATE];
  if (state.ended) return this;
  state.ended = true;
  capture(state.recording, chunk, encoding);
  const set = Object.entries(this.getHeaders());
  if (state.headHeaders.length === 0) state.recording.head(this.statusCode, set);
  else {
    const headers = new Map<string, HeaderValue>(set);
    for (const [name, value] of state.headHeaders) headers.set(name.toLowerCase(), value); // writeHead's win, as in Node
    state.recording.head(this.statusCode, headers);
  }
  void state.recording
    .finish()
    .finally(() => (state.end as (...args: unknown[]) => ServerResponse).call(this, chunk, encoding, callback));
  return this;
}

function abandonUnlessEnded(this: Recorded): void {
  if (!this[STATE].ended) this[STATE].recording.abandon();
}

/** Header lookup over a Node request, for `HttpRequestInfo`. */
export function nodeHeader(req: IncomingMessage): HttpRequestInfo['header'] {
  return (name) => req.headers[name];
}

/** Declared body size from Content-Length, when the client sent one. */
export function declaredLength(req: IncomingMessage): number | undefined {
  const length = req.headers['content-length'];
  if (length === undefined) return undefined;
  const bytes = Number(length);
  return Number.isSafeInteger(bytes) && bytes >= 0 ? bytes : undefined;
}

/** True when the request carries a body to read. */
export function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (declaredLength(req) ?? 0) > 0;
}

/**
 * Reads the whole request body, refusing past `limit` bytes. Resolves `undefined` when the body
 * is over the limit (the rest is drained so the connection can answer 413 cleanly).
 */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) over = true;
    if (!over) chunks.push(chunk);
  }
  return over ? undefined : Buffer.concat(chunks);
}

/** A request on which a body parser (Express's, Nest's) may have left what it read. */
export type ParsedRequest = IncomingMessage & { body?: unknown };

/**
 * Reads the body when no parser did, so that it can be fingerprinted, and leaves it on
 * `req.body` (parsed when it is JSON); parsers that run later see a consumed stream. Resolves
 * the body size in bytes (Content-Length when a parser read it), `'too-large'` past `limit`, or
 * `'aborted'` when the client went away mid-body.
 */
export async function readUnparsedBody(
  req: ParsedRequest,
  limit: number,
): Promise<number | undefined | 'too-large' | 'aborted'> {
  if (!unparsed(req.body) || !hasBody(req) || req.readableEnded) return declaredLength(req);
  const body = await readBody(req, limit).catch(() => null);
  if (body === null) return 'aborted';
  if (body === undefined) return 'too-large';
  req.body = parsedBody(req, body);
  return body.length;
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

/** Parses a body read as bytes the way the fingerprint and a JSON handler expect. */
export function parsedBody(req: IncomingMessage, body: Buffer): unknown {
  const type = req.headers['content-type'] ?? '';
  if (/\bjson\b/i.test(type)) {
    try {
      return JSON.parse(body.toString('utf8'));
    } catch {
      return body;
    }
  }
  return body;
}
