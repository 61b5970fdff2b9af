import { hashText } from '../core/canonical.js';
import type { HttpRequestInfo } from './http-types.js';

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

/** What to do with a keyed request whose caller Idem cannot tell apart from others. */
export type AnonymousPolicy = 'refuse' | 'pass' | 'shared';

export interface CallerScopeOptions {
  /**
   * Request headers (any case) whose values identify the caller. Default: `Authorization`,
   * `X-API-Key`, `API-Key`, `X-Auth-Token`, `X-Access-Token`, and, only when none of those is
   * sent, the whole `Cookie` header. Giving `headers` or `cookies` replaces that default: the scope
   * is then made of exactly the headers and cookies named.
   */
  headers?: readonly string[];
  /**
   * Cookie names whose values identify the caller (`session`, `sid`). Naming the session cookie is
   * better than the default whole `Cookie` header, which changes when any other cookie does.
   */
  cookies?: readonly string[];
}

/**
 * The scope of a request: a hash of the credentials it carries, or `undefined` when it carries
 * none that Idem recognises. Two callers with different credentials never share a scope, so
 * they never share a key's record.
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
      if (value !== undefined) parts.push(`h:${name}:${value}`);
    }
    if (cookies.length > 0) {
      const jar = parseCookies(headerText(request, 'cookie'));
      for (const name of cookies) {
        const value = jar.get(name);
        if (value !== undefined) parts.push(`c:${name}:${value}`);
      }
    }
    return parts.length === 0 ? undefined : hashText(parts.join('\n'));
  };
}

/** The default: the credential headers present, else the whole Cookie header, else none. */
function defaultCallerScope(request: HttpRequestInfo): string | undefined {
  let parts = '';
  for (const name of DEFAULT_SCOPE_HEADERS) {
    const value = headerText(request, name);
    if (value !== undefined) parts += `h:${name}:${value}\n`;
  }
  if (parts !== '') return hashText(parts);
  const cookie = headerText(request, 'cookie');
  return cookie === undefined ? undefined : hashText(`cookie:${cookie}`);
}

/** A header's value as one string (repeats joined by a newline); `undefined` when absent or empty. */
function headerText(request: HttpRequestInfo, name: string): string | undefined {
  const value = request.header(name);
  const text = Array.isArray(value) ? value.join('\n') : value;
  return text === undefined || text.trim() === '' ? undefined : text;
}

/** Cookie name -> value from a `Cookie` header (RFC 6265 `name=value; name2=value2`); the first of a repeated name wins. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const jar = new Map<string, string>();
  if (header === undefined) return jar;
  for (const pair of header.split(/;|\n/)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    if (name !== '' && value !== '' && !jar.has(name)) jar.set(name, value);
  }
  return jar;
}
