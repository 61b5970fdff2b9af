import { addDefaultCredential } from '../../check/caller-credential.js';
import type { ProbeTarget } from '../../check/http-probe.js';

/** The request a check repeats: the operation one call of the endpoint performs. */
export interface CheckRequest {
  /** The method, e.g. `'POST'`. Required; GET, HEAD and OPTIONS are refused (they are safe already). */
  method: string;
  /**
   * The path and query, e.g. `'/charges'`. Required for an in-process app; for a URL target,
   * resolved against the URL (default: the URL's own path).
   */
  path?: string;
  /**
   * Headers of every request. Without a credential (`authorization`, an API-key header, `cookie`)
   * the check sends a cookie of its own, `idem-check=<id>`, because Idem scopes keys by the caller.
   * An `idempotency-key` is refused: the check sends its own fresh keys.
   */
  headers?: Record<string, string>;
  /** A JSON value (sent as `application/json` unless a content-type is given), a string or bytes. Default `{}` for POST, PUT and PATCH. */
  body?: unknown;
}

/** The probe target for `request` at `base`, checked; `what` names the caller in errors. */
export function probeTargetOf(base: URL, baseIsApp: boolean, request: unknown, what: string): ProbeTarget {
  if (typeof request !== 'object' || request === null) {
    throw new TypeError(
      `[idem] ${what}: the request must be an object like { method: 'POST', path: '/charges', body: {...} }.`,
    );
  }
  const given = request as Partial<CheckRequest>;
  const method = methodOf(given.method, what);
  if (given.path !== undefined && (typeof given.path !== 'string' || !given.path.startsWith('/'))) {
    throw new TypeError(
      `[idem] ${what}: request.path ${JSON.stringify(given.path)} must start with "/", e.g. '/charges'.`,
    );
  }
  if (given.path === undefined && baseIsApp) {
    throw new TypeError(`[idem] ${what}: request.path is missing; give the route to check, e.g. path: '/charges'.`);
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(given.headers ?? {})) headers[name.toLowerCase()] = String(value);
  if (headers['idempotency-key'] !== undefined) {
    throw new TypeError(`[idem] ${what}: remove the idempotency-key header; the check sends its own fresh keys.`);
  }
  const defaultCredential = addDefaultCredential(headers);
  const body = bodyOf(given.body, method, headers);
  return {
    url: given.path === undefined ? base : new URL(given.path, base),
    method,
    headers,
    body,
    ...(defaultCredential === undefined ? {} : { defaultCredential }),
  };
}

function methodOf(method: unknown, what: string): string {
  if (typeof method !== 'string' || !/^[A-Za-z]+$/.test(method)) {
    throw new TypeError(
      `[idem] ${what}: request.method ${method === undefined ? 'is missing' : `${JSON.stringify(method)} is not an HTTP method`}; give the method that changes something, e.g. 'POST'.`,
    );
  }
  const upper = method.toUpperCase();
  if (['GET', 'HEAD', 'OPTIONS'].includes(upper)) {
    throw new TypeError(
      `[idem] ${what}: ${upper} is safe by definition; check the request that changes something (POST, PUT, PATCH, DELETE).`,
    );
  }
  return upper;
}

function bodyOf(body: unknown, method: string, headers: Record<string, string>): Buffer | undefined {
  const value = body ?? (['POST', 'PUT', 'PATCH'].includes(method) ? {} : undefined);
  if (value === undefined) return undefined;
  if (typeof value === 'string') return Buffer.from(value);
  if (value instanceof Uint8Array) return Buffer.from(value);
  headers['content-type'] ??= 'application/json';
  return Buffer.from(JSON.stringify(value));
}
