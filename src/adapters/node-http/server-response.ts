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
  const { write, end, writeHead } = res;
  // Headers given to writeHead() never show in getHeaders(); keep them for the record.
  let headHeaders: [string, string | number | readonly string[] | undefined][] = [];
  let ended = false;
  const capture = (chunk: unknown, encoding: unknown) => {
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
    if (typeof chunk === 'string') {
      recording.write(Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'));
    } else if (chunk instanceof Uint8Array) {
      recording.write(chunk);
    }
  };
  res.writeHead = function recordedWriteHead(this: ServerResponse, status: number, ...rest: unknown[]) {
    const headers = rest.find((arg) => typeof arg === 'object' && arg !== null);
    if (Array.isArray(headers)) {
      // A flat [name, value, name, value] list, or [[name, value], ...].
      headHeaders = Array.isArray(headers[0])
        ? (headers as [string, string][])
        : headers.flatMap((item, i) =>
            i % 2 === 0 ? [[String(item), headers[i + 1] as string] as [string, string]] : [],
          );
    } else if (headers !== undefined) {
      headHeaders = Object.entries(headers as Record<string, string | number | string[] | undefined>);
    }
    return (writeHead as (...args: unknown[]) => ServerResponse).call(this, status, ...rest);
  } as ServerResponse['writeHead'];
  res.write = function recordedWrite(this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    capture(chunk, rest[0]);
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as ServerResponse['write'];
  res.end = function recordedEnd(this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    if (ended) return this;
    ended = true;
    capture(chunk, rest[0]);
    const headers = new Map<string, string | number | readonly string[] | undefined>(Object.entries(res.getHeaders()));
    for (const [name, value] of headHeaders) headers.set(name.toLowerCase(), value); // writeHead's win, as in Node
    recording.head(res.statusCode, headers);
    void recording.finish().finally(() => (end as (...args: unknown[]) => ServerResponse).call(this, chunk, ...rest));
    return this;
  } as ServerResponse['end'];
  res.once('close', () => {
    if (!ended) recording.abandon();
  });
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
