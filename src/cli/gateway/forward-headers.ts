import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';

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
 * Adds the end-to-end pairs of `raw` to `headers` under their lower-case names (repeats kept in
 * order, as an array), leaving out hop-by-hop headers, those the `Connection` header names, and
 * `leaveOut`. One pass, no intermediate map: this runs twice for every request forwarded.
 */
function addEndToEnd(raw: string[], leaveOut: Set<string>, headers: OutgoingHttpHeaders): void {
  const named = connectionTokens(raw);
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (HOP_BY_HOP.has(name) || leaveOut.has(name) || named?.has(name) === true) continue;
    const value = raw[i + 1] as string;
    const before = headers[name];
    if (before === undefined) headers[name] = value;
    else if (Array.isArray(before)) before.push(value);
    else headers[name] = [before as string, value];
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
export function upstreamRequestHeaders(req: IncomingMessage, upstreamHost: string, body: ForwardedBody) {
  // No prototype: a header named __proto__ is a header like any other.
  const headers: OutgoingHttpHeaders = Object.create(null);
  addEndToEnd(req.rawHeaders, NOT_FORWARDED_UP, headers);
  headers.host = upstreamHost;
  const remote = req.socket.remoteAddress;
  if (remote !== undefined) headers['x-forwarded-for'] = remote;
  headers['x-forwarded-proto'] = 'encrypted' in req.socket ? 'https' : 'http';
  if (req.headers.host !== undefined) headers['x-forwarded-host'] = req.headers.host;
  if (body !== 'stream') {
    if (body.length > 0 || methodCarriesBody(req.method)) headers['content-length'] = String(body.length);
  } else if (req.headers['transfer-encoding'] !== undefined) {
    headers['transfer-encoding'] = 'chunked';
  } else if (req.headers['content-length'] !== undefined) {
    headers['content-length'] = req.headers['content-length'];
  } else if (methodCarriesBody(req.method)) {
    headers['content-length'] = '0';
  }
  return headers;
}

/** Copies the upstream's status and end-to-end headers onto the client's response (not yet sent). */
export function copyResponseHead(upstream: IncomingMessage, res: ServerResponse): void {
  res.statusCode = upstream.statusCode ?? 502;
  if (upstream.statusMessage) res.statusMessage = upstream.statusMessage;
  const headers: OutgoingHttpHeaders = Object.create(null);
  addEndToEnd(upstream.rawHeaders, EMPTY, headers);
  for (const name in headers) res.setHeader(name, headers[name] as string | string[]);
}

const EMPTY = new Set<string>();

function methodCarriesBody(method: string | undefined): boolean {
  return method === 'POST' || method === 'PUT' || method === 'PATCH';
}
