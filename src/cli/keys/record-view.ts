import { isSealed, OutcomeCodec, OutcomeKind } from '../../core/outcome.js';
import type { IdempotencyRecord } from '../../core/store.js';
import { reasonOf } from '../cli-error.js';
import { encryptionKeysFromEnv } from '../encryption-env.js';
import { columns } from '../text-table.js';

/** What a stored result holds, as far as it can be read without the application. */
interface ResultSummary {
  kind: 'http' | 'value' | 'error' | 'too_large' | 'not_stored' | 'sealed' | 'unreadable';
  bytes: number;
  status?: number;
  headers?: [string, string][];
  body?: string;
}

function summarize(result: Uint8Array, key: string): ResultSummary {
  let outcome: ReturnType<OutcomeCodec['decode']>;
  try {
    outcome = new OutcomeCodec(encryptionKeysFromEnv()).decode(result, key);
  } catch (error) {
    return undecodable(result, error);
  }
  const payload = Buffer.from(outcome.payload);
  if (outcome.kind === OutcomeKind.tooLarge) return { kind: 'too_large', bytes: Number(payload.toString()) };
  if (outcome.kind === OutcomeKind.notStored) return { kind: 'not_stored', bytes: 0, body: payload.toString() };
  if (outcome.kind === OutcomeKind.error) return { kind: 'error', bytes: payload.length, body: preview(payload) };
  return httpSummary(payload) ?? { kind: 'value', bytes: payload.length, body: preview(payload) };
}

/** A result that does not decode: sealed when it is encrypted and IDEM_ENCRYPTION_KEY is not set, else unreadable. */
function undecodable(result: Uint8Array, error: unknown): ResultSummary {
  const sealed = isSealed(result) && encryptionKeysFromEnv() === undefined;
  return {
    kind: sealed ? 'sealed' : 'unreadable',
    bytes: result.length,
    ...(sealed ? {} : { body: reasonOf(error) }),
  };
}

/**
 * The payload read as an HTTP response: a 4-byte head length, the head as JSON [status, headers],
 * then the body. `undefined` when it is not one: another face stored a plain value.
 */
function httpSummary(payload: Buffer): ResultSummary | undefined {
  if (payload.length < 4) return undefined;
  const headLength = payload.readUInt32BE(0);
  if (headLength === 0 || 4 + headLength > payload.length) return undefined;
  const head = httpHead(payload.subarray(4, 4 + headLength));
  if (head === undefined) return undefined;
  const body = payload.subarray(4 + headLength);
  return { kind: 'http', bytes: body.length, status: head.status, headers: head.headers, body: preview(body) };
}

/** The JSON head `[status, headers]` of a stored HTTP response; `undefined` when the bytes are not one. */
function httpHead(bytes: Buffer): { status: number; headers: [string, string][] } | undefined {
  try {
    const [status, headers] = JSON.parse(bytes.toString()) as [number, [string, string][]];
    return Number.isInteger(status) && Array.isArray(headers) ? { status, headers } : undefined;
  } catch {
    return undefined;
  }
}

function preview(bytes: Buffer): string {
  const text = bytes.subarray(0, 500).toString('utf8');
  const printable = /^[\t\n\r\x20-\x7e\u00a0-\uffff]*$/.test(text);
  if (!printable) return `<${bytes.length} bytes of binary>`;
  return bytes.length > 500 ? `${text}... (${bytes.length} bytes)` : text;
}

function shortResult(record: IdempotencyRecord): string {
  if (record.result === null) return '-';
  const summary = summarize(record.result, record.key);
  switch (summary.kind) {
    case 'http': {
      const type = summary.headers?.find(([name]) => name === 'content-type')?.[1]?.split(';')[0];
      return `HTTP ${summary.status}${type ? ` ${type}` : ''}, ${summary.bytes} B`;
    }
    case 'too_large':
      return `too large to keep (${summary.bytes} B)`;
    case 'not_stored':
      return `not stored: ${summary.body}`;
    case 'sealed':
      return `encrypted, ${summary.bytes} B`;
    default:
      return `${summary.kind}, ${summary.bytes} B`;
  }
}

function time(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

export function table(records: IdempotencyRecord[]): string {
  const rows = [
    ['STORE KEY', 'STATE', 'TRIES', 'UPDATED', 'EXPIRES', 'RESULT'],
    ...records.map((record) => [
      record.key,
      record.state === 'in_progress' && record.leaseExpiresAtMs <= Date.now()
        ? 'in_progress (lease over)'
        : record.state,
      String(record.attempts),
      time(record.updatedAtMs),
      record.expiresAtMs <= Date.now() ? `${time(record.expiresAtMs)} (expired)` : time(record.expiresAtMs),
      shortResult(record),
    ]),
  ];
  return columns(rows);
}

export function details(record: IdempotencyRecord): string {
  const now = Date.now();
  const lines = [
    `store key   ${record.key}`,
    `state       ${record.state}`,
    `attempts    ${record.attempts}`,
    `created     ${time(record.createdAtMs)}`,
    `updated     ${time(record.updatedAtMs)}`,
    `expires     ${time(record.expiresAtMs)} ${record.expiresAtMs <= now ? '(expired: idem keys sweep deletes it)' : `(in ${Math.round((record.expiresAtMs - now) / 1000)} s)`}`,
    `fingerprint ${record.fingerprint}`,
  ];
  if (record.state === 'in_progress') {
    const left = record.leaseExpiresAtMs - now;
    lines.push(
      `lease       ${left > 0 ? `held for ${Math.ceil(left / 1000)} s more` : 'over: the next request with this key takes it over'}`,
    );
  }
  if (record.result !== null) lines.push(...resultLines(record, record.result));
  return lines.join('\n');
}

/** The stored result: an HTTP response with its status, headers and body, or a summary and a preview. */
function resultLines(record: IdempotencyRecord, result: Uint8Array): string[] {
  const summary = summarize(result, record.key);
  if (summary.kind === 'http') {
    const headers = (summary.headers ?? []).map(([name, value]) => `            ${name}: ${value}`);
    return [`response    HTTP ${summary.status}, ${summary.bytes} bytes`, ...headers, '', summary.body ?? ''];
  }
  const lines = [`result      ${shortResult(record)}`];
  if (summary.body) lines.push('', summary.body);
  return lines;
}

export function recordJson(record: IdempotencyRecord, withResult = false): Record<string, unknown> {
  const json: Record<string, unknown> = {
    key: record.key,
    state: record.state,
    attempts: record.attempts,
    createdAt: new Date(record.createdAtMs).toISOString(),
    updatedAt: new Date(record.updatedAtMs).toISOString(),
    expiresAt: new Date(record.expiresAtMs).toISOString(),
    leaseExpiresAt: new Date(record.leaseExpiresAtMs).toISOString(),
    fingerprint: record.fingerprint,
  };
  if (record.result !== null) json.result = withResult ? summarize(record.result, record.key) : shortResult(record);
  return json;
}
