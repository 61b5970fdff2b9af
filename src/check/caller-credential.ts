import { randomUUID } from 'node:crypto';
import { DEFAULT_SCOPE_HEADERS } from '../http/caller-scope.js';

/** Headers that identify the caller to Idem's default scope. */
const CREDENTIAL_HEADERS: readonly string[] = [...DEFAULT_SCOPE_HEADERS, 'cookie'];

/**
 * Idem scopes keys by the caller's credentials and refuses keyed requests that carry none: a
 * checker without any would test only that refusal. When `headers` (lower-case names) hold no
 * credential, adds a cookie of the checker's own, `idem-check=<id>`, and returns that header as
 * `cookie: idem-check=<id>`; else returns `undefined` and leaves `headers` alone.
 */
export function addDefaultCredential(headers: Record<string, string>): string | undefined {
  if (CREDENTIAL_HEADERS.some((name) => headers[name] !== undefined)) return undefined;
  const credential = `idem-check=${randomUUID().slice(0, 8)}`;
  headers.cookie = credential;
  return `cookie: ${credential}`;
}

/**
 * How many records a read-back holds: a JSON array's length, a whole number, an object's
 * `count`/`total`/`totalCount`/`total_count`, or the length of its only array; else `undefined`.
 */
export function countOf(value: unknown): number | undefined {
  if (Array.isArray(value)) return value.length;
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  for (const name of ['count', 'total', 'totalCount', 'total_count']) {
    if (typeof record[name] === 'number') return record[name] as number;
  }
  const arrays = Object.values(record).filter(Array.isArray);
  return arrays.length === 1 ? (arrays[0] as unknown[]).length : undefined;
}
