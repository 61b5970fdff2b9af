import { canonicalize, hashText } from '../core/canonical.js';
import type { HttpRequestInfo } from './http-types.js';

export interface FingerprintOptions {
  /**
   * Only these top-level-or-dotted JSON paths of the body count (`amount`, `customer.id`).
   * Default: the whole body.
   */
  includePaths?: string[];
  /** JSON paths left out of the fingerprint, such as a client timestamp (`meta.sentAt`). Default: none. */
  excludePaths?: string[];
  /** Request headers that count too (lower-case names), such as `x-api-version`. Default: none. */
  includeHeaders?: string[];
}

/**
 * Fingerprint of a request: method, route, the target with its query, chosen headers and a
 * canonical body. A JSON body is canonical JSON (sorted keys, so `{"a":1,"b":2}` and `{"b":2,"a":1}` are one request); a form
 * body is its fields; any other body counts by its bytes.
 */
export function requestFingerprint(request: HttpRequestInfo, options: FingerprintOptions = {}): string {
  let head = `${request.method}\n${request.route}\n${request.url ?? request.route}\n`;
  if (options.includeHeaders !== undefined) head += headerLines(request, options.includeHeaders);
  const body = bodyText(request, options);
  // One string and a one-shot hash for the usual JSON body; bytes only when the body is bytes.
  return typeof body === 'string' ? hashText(head + body) : hashText(Buffer.concat([Buffer.from(head), body]));
}

/** `name:value` lines of the chosen request headers, repeats joined by commas. */
function headerLines(request: HttpRequestInfo, names: readonly string[]): string {
  let lines = '';
  for (const name of names) {
    const value = request.header(name);
    lines += `${name}:${Array.isArray(value) ? value.join(',') : (value ?? '')}\n`;
  }
  return lines;
}

function bodyText(request: HttpRequestInfo, options: FingerprintOptions): string | Uint8Array {
  const { body } = request;
  if (body === undefined || body === null) return 'none';
  // A body a parser already read (the usual case) is its value; only text or bytes are parsed here.
  if (typeof body !== 'string' && !(body instanceof Uint8Array)) return canonicalBody(body, options);
  const parsed = parseSent(request, body);
  return 'raw' in parsed ? parsed.raw : canonicalBody(parsed.value, options);
}

/** `json:` and the canonical JSON of the body, narrowed by includePaths and excludePaths. */
function canonicalBody(body: unknown, options: FingerprintOptions): string {
  let value = body;
  if (options.includePaths !== undefined) value = pick(value, options.includePaths);
  if (options.excludePaths !== undefined) value = omit(value, options.excludePaths);
  return `json:${canonicalize(value)}`;
}

/**
 * A body as sent (text or bytes): a JSON or form body as its value, so that key order and spacing
 * do not count; any other body, or JSON that does not parse, by its bytes.
 */
function parseSent(
  request: HttpRequestInfo,
  body: string | Uint8Array,
): { value: unknown } | { raw: string | Uint8Array } {
  const contentType = String(request.header('content-type') ?? '');
  const text = () => (typeof body === 'string' ? body : Buffer.from(body).toString('utf8'));
  if (/\bjson\b/i.test(contentType)) {
    try {
      return { value: JSON.parse(text()) };
    } catch {
      // Not valid JSON after all: it counts by its bytes, like any other body.
      return { raw: rawOf(body) };
    }
  }
  if (/application\/x-www-form-urlencoded/i.test(contentType)) {
    return { value: Object.fromEntries(groupForm(new URLSearchParams(text()))) };
  }
  return { raw: rawOf(body) };
}

function rawOf(body: string | Uint8Array): string | Uint8Array {
  return typeof body === 'string' ? `raw:${body}` : Buffer.concat([Buffer.from('raw:'), body]);
}

/** Form fields as name -> value, or name -> values when repeated; order of repeats is kept. */
function groupForm(params: URLSearchParams): Map<string, string | string[]> {
  const fields = new Map<string, string | string[]>();
  for (const [name, value] of params) {
    const seen = fields.get(name);
    if (seen === undefined) fields.set(name, value);
    else fields.set(name, Array.isArray(seen) ? [...seen, value] : [seen, value]);
  }
  return fields;
}

function pick(body: unknown, paths: string[]): Record<string, unknown> {
  const picked: Record<string, unknown> = {};
  for (const path of paths) picked[path] = at(body, path.split('.'));
  return picked;
}

function omit(body: unknown, paths: string[]): unknown {
  return paths.reduce((value, path) => without(value, path.split('.')), body);
}

function at(value: unknown, parts: string[]): unknown {
  let current = value;
  for (const part of parts) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function without(value: unknown, parts: string[]): unknown {
  const [head, ...rest] = parts;
  if (head === undefined || typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const record = value as Record<string, unknown>;
  if (!(head in record)) return value;
  const { [head]: inner, ...others } = record;
  return rest.length === 0 ? others : { ...others, [head]: without(inner, rest) };
}
