import { hashText } from '../core/canonical.js';
import { storeKeyOf } from '../core/keys.js';
import type { HttpRequestInfo } from './http-types.js';
import { trimOws } from './key-header.js';

/**
 * Request headers that carry a caller's credentials, by default: `Authorization` and the usual
 * API-key headers. Lower case.
 */
export const DEFAULT_SCOPE_HEADERS = [
  'authorization',
  'x-api-key',
  'api-key',
  'x-auth-token',
  'x-access-token',
] as const;

/**
 * What to do with a keyed request whose caller Idem cannot tell apart from others (its scope is
 * `undefined`): `refuse` it with 400 `caller-unknown`, `pass` it through unprotected, or put it in
 * one `shared` scope with every other unknown caller.
 */
export type AnonymousPolicy = 'refuse' | 'pass' | 'shared';

export interface CallerScopeOptions {
  /**
   * Request headers (any case) whose values identify the caller. Default: `Authorization`,
   * `X-API-Key`, `API-Key`, `X-Auth-Token`, `X-Access-Token`, and, only when none of those is
   * sent, every cookie of the `Cookie` header. Giving `headers` or `cookies` replaces that
   * default: the scope is then made of exactly the headers and cookies named.
   */
  headers?: readonly string[];
  /**
   * Cookie names whose values identify the caller (`session`, `sid`). Naming the session cookie is
   * better than the default of every cookie, which changes when any other cookie does (a retry
   * with a new analytics cookie would then run again). An empty cookie counts as absent.
   */
  cookies?: readonly string[];
}

/**
 * The scope of a request: a hash of the credentials it carries, or `undefined` when it carries
 * none that Idem recognises (see the `anonymous` option). Two callers with different credentials
 * never share a scope, so they never share a key's record. Header values that are empty or only
 * whitespace count as absent.
 *
 * @example
 * ```ts
 * idempotency({ store, scope: callerScope({ cookies: ['sid'] }) });
 * ```
 */
export function callerScope(options: CallerScopeOptions = {}): (request: HttpRequestInfo) => string | undefined {
  if (options.headers === undefined && options.cookies === undefined) return defaultCallerScope;
  const headers = (options.headers ?? []).map((name) => name.toLowerCase());
  const cookies = options.cookies ?? [];
  return function namedCallerScope(request) {
    const parts: string[] = [];
    for (const name of headers) {
      const value = headerText(request, name);
      if (value !== undefined) parts.push('h', name, value);
    }
    if (cookies.length > 0) {
      const jar = cookieMap(parseCookies(headerText(request, 'cookie')));
      for (const name of cookies) {
        const value = jar.get(name);
        if (value !== undefined) parts.push('c', name, value);
      }
    }
    return scopeHash(parts);
  };
}

/** `"h","<name>",` for each default header: the JSON of its first two parts, made once. */
const DEFAULT_HEADER_PARTS = DEFAULT_SCOPE_HEADERS.map((name) => [name, `"h",${JSON.stringify(name)},`] as const);

/** The default: the credential headers present, else every cookie, else none. */
function defaultCallerScope(request: HttpRequestInfo): string | undefined {
  // The JSON text of the parts (as `scopeHash` makes it), built directly: this runs on every request.
  let json = '';
  for (const [name, prefix] of DEFAULT_HEADER_PARTS) {
    const value = headerText(request, name);
    if (value !== undefined) json += `${json === '' ? '[' : ','}${prefix}${JSON.stringify(value)}`;
  }
  if (json !== '') return hashText(`${json}]`);
  // The same cookies in another order, or with other spacing, are the same caller.
  const parts: string[] = [];
  const pairs = parseCookies(headerText(request, 'cookie')).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [name, value] of pairs) parts.push('c', name, value);
  return scopeHash(parts);
}

/** JSON of the parts, so no header value can forge the boundary between two parts. */
function scopeHash(parts: string[]): string | undefined {
  return parts.length === 0 ? undefined : hashText(JSON.stringify(parts));
}

/** A header's value as one string (repeats joined by a newline); `undefined` when absent or blank. */
function headerText(request: HttpRequestInfo, name: string): string | undefined {
  const value = request.header(name);
  const text = Array.isArray(value) ? value.join('\n') : value;
  return text === undefined || trimOws(text) === '' ? undefined : text;
}

/**
 * The `name=value` pairs of a `Cookie` header (RFC 6265 `a=1; b=2`), in order, repeats kept.
 * Names and values are trimmed of spaces and tabs only. A pair without `=` is a nameless cookie
 * (name `''`), as browsers send one; pairs with an empty value are left out: they carry nothing.
 */
export function parseCookies(header: string | undefined): [name: string, value: string][] {
  const pairs: [string, string][] = [];
  if (header === undefined) return pairs;
  for (const pair of header.split(/[;\n]/)) {
    const eq = pair.indexOf('=');
    const name = eq < 0 ? '' : trimOws(pair.slice(0, eq));
    const value = trimOws(pair.slice(eq + 1));
    if (value !== '') pairs.push([name, value]);
  }
  return pairs;
}

/** Name -> value; the first of a repeated name wins, as browsers send the most specific path first. */
function cookieMap(pairs: [string, string][]): Map<string, string> {
  const jar = new Map<string, string>();
  for (const [name, value] of pairs) if (!jar.has(name)) jar.set(name, value);
  return jar;
}

export interface HttpStoreKeyParts {
  /** The `namespace` option. Default `http`. */
  namespace?: string;
  /** The caller's scope, as `scope(request)` returned it; `undefined` for the shared anonymous scope. */
  scope: string | undefined;
  /** Upper-case method; counts only with `keyPerRoute`. */
  method: string;
  /** The route as the adapter saw it; counts only with `keyPerRoute`. */
  route: string;
  /** The `keyPerRoute` option. Default false. */
  keyPerRoute?: boolean;
  /** The caller's key, as parsed from the header (without Structured Field quotes). */
  key: string;
}

/**
 * The store key of an HTTP request's record: what the middleware and the gateway claim, and what
 * `idem keys` needs to find a record from the key a client sent.
 */
export function httpStoreKey(parts: HttpStoreKeyParts): string {
  // JSON, so a scope string can never pass for the shared anonymous scope (null) or for a route.
  const scope = parts.scope ?? null;
  const owner = parts.keyPerRoute ? [parts.method.toUpperCase(), parts.route, scope] : [scope];
  return storeKeyOf(parts.namespace ?? 'http', JSON.stringify(owner), parts.key);
}
