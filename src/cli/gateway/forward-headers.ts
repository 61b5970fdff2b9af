import type { IncomingMessage, ServerResponse } from 'node:http';

/** Headers that belong to one connection, never forwarded (RFC 9110 section 7.6.1). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Appends the end-to-end pairs of `raw` to the flat list `out` (`[name, value, name, value, ...]`,
 * names in lower case, repeats kept in order), leaving out hop-by-hop headers, those the
 * `Connection` header names, and `leaveOut`. One pass, no map: this runs twice for every request
 * forwarded, and a flat list goes into Node's head as it is, with no `setHeader` per header.
 * Repeated `Cookie` headers are joined with `; `, as Node joins them when given a list.
 */
function addEndToEnd(raw: string[], leaveOut: Set<string>, out: string[]): void {
  const named = connectionTokens(raw);
  let cookieAt = -1;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (HOP_BY_HOP.has(name) || leaveOut.has(name) || named?.has(name) === true) continue;
    const value = raw[i + 1] as string;
    if (name === 'cookie') {
      if (cookieAt >= 0) {
        out[cookieAt] = `${out[cookieAt]}; ${value}`;
        continue;
      }
      cookieAt = out.length + 1;
    }
    out.push(name, value);
  }
}

/** The header names a `Connection` header lists (hop-by-hop too); `undefined` when there is none. */
function connectionTokens(raw: string[]): Set<string> | undefined {
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue;
    named ??= new Set();
    for (const token of (raw[i + 1] as string).split(',')) named.add(token.trim().toLowerCase());
  }
  return named;
}

/**
 * Request headers never passed on from the client: the ones the gateway sets itself (`Host`, the
 * framing, and the forwarding headers, which a client could otherwise forge to pose as another
 * address or host), and `Expect` (the gateway answered it already).
 */
const NOT_FORWARDED_UP = new Set([
  'host',
  'expect',
  'content-length',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-real-ip',
]);

/** How the request body goes to the upstream: read whole (its bytes) or streamed as it arrives. */
export type ForwardedBody = Buffer | 'stream';

/**
 * The headers sent to the upstream: the client's end-to-end headers, `Host` set to the
 * upstream's, `X-Forwarded-For`, `-Host` and `-Proto` set by the gateway from the connection
 * (never taken from the client), and the body's framing, always explicit: a body read whole goes
 * with its `Content-Length`; a streamed one with the client's `Content-Length`, or chunked when
 * the client sent it chunked. Left implicit, a body on a GET, HEAD, DELETE or OPTIONS went out
 * with neither, and the upstream read its bytes as a second request (request smuggling).
 */
export function upstreamRequestHeaders(req: IncomingMessage, upstreamHost: string, body: ForwardedBody): string[] {
  // A flat list, not an object: a header named __proto__ is a header like any other, and Node
  // writes the list into the head without a setHeader per header.
  const headers: string[] = [];
  addEndToEnd(req.rawHeaders, NOT_FORWARDED_UP, headers);
  headers.push('host', upstreamHost);
  const remote = req.socket.remoteAddress;
  if (remote !== undefined) headers.push('x-forwarded-for', remote);
  headers.push('x-forwarded-proto', 'encrypted' in req.socket ? 'https' : 'http');
  const { host, 'transfer-encoding': coding, 'content-length': length } = req.headers;
  if (host !== undefined) headers.push('x-forwarded-host', host);
  if (body !== 'stream') {
    if (body.length > 0 || methodCarriesBody(req.method)) headers.push('content-length', String(body.length));
  } else if (coding !== undefined) {
    headers.push('transfer-encoding', 'chunked');
  } else if (length !== undefined) {
    headers.push('content-length', length);
  } else if (methodCarriesBody(req.method)) {
    headers.push('content-length', '0');
  }
  return headers;
}

/**
 * Copies the upstream's status and end-to-end headers onto the client's response (not yet sent),
 * header by header: the response can still be changed (a response being recorded is).
 */
export function copyResponseHead(upstream: IncomingMessage, res: ServerResponse): void {
  res.statusCode = upstream.statusCode ?? 502;
  if (upstream.statusMessage) res.statusMessage = upstream.statusMessage;
  const headers = responseHeaders(upstream);
  const seen = new Set<string>();
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    const value = headers[i + 1] as string;
    // The first of a name replaces what the gateway set (the upstream's word wins); repeats add.
    if (seen.has(name)) res.appendHeader(name, value);
    else res.setHeader(name, value);
    seen.add(name);
  }
}

/**
 * Writes the upstream's status and end-to-end headers as the client's response head, in one
 * call: for a response that goes out as it comes (no key), with no header map built on the way.
 * Headers the gateway set before are replaced by the upstream's of the same name.
 */
export function writeResponseHead(upstream: IncomingMessage, res: ServerResponse): void {
  const status = upstream.statusCode ?? 502;
  const headers = responseHeaders(upstream);
  if (upstream.statusMessage) res.writeHead(status, upstream.statusMessage, headers);
  else res.writeHead(status, headers);
}

/** The upstream response's end-to-end headers, as a flat list. */
function responseHeaders(upstream: IncomingMessage): string[] {
  const headers: string[] = [];
  addEndToEnd(upstream.rawHeaders, EMPTY, headers);
  return headers;
}

const EMPTY = new Set<string>();

function methodCarriesBody(method: string | undefined): boolean {
  return method === 'POST' || method === 'PUT' || method === 'PATCH';
}
