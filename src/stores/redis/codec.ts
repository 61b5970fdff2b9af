/**
 * How the Redis store reads its replies: records from a hash's field/value pairs, and the list
 * cursor in and out of its opaque string.
 */
import { ErrorCode, IdempotencyError } from '../../core/errors.js';
import type { IdempotencyRecord } from '../../core/store.js';

/**
 * A record from HGETALL's flat `[field, value, ...]` reply (bulk strings as Buffers), or `null`
 * when the hash is empty (no record) or is not one of Idem's records.
 */
export function decodeRecord(reply: unknown): IdempotencyRecord | null {
  if (!Array.isArray(reply) || reply.length === 0) return null;
  const fields = new Map<string, Buffer>();
  for (let i = 0; i + 1 < reply.length; i += 2) {
    const field: unknown = reply[i];
    const value: unknown = reply[i + 1];
    if (Buffer.isBuffer(field) && Buffer.isBuffer(value)) fields.set(field.toString('utf8'), value);
  }
  const state = fields.get('state')?.toString('utf8');
  if (state !== 'in_progress' && state !== 'completed') return null;
  const result = fields.get('result');
  return {
    key: text(fields, 'key'),
    fingerprint: text(fields, 'fingerprint'),
    state,
    token: text(fields, 'token'),
    leaseExpiresAtMs: Number(text(fields, 'leaseExpiresAtMs')),
    expiresAtMs: Number(text(fields, 'expiresAtMs')),
    // A copy, so the record owns its bytes rather than a view into the socket's read buffer.
    result: result === undefined ? null : new Uint8Array(result),
    createdAtMs: Number(text(fields, 'createdAtMs')),
    updatedAtMs: Number(text(fields, 'updatedAtMs')),
    attempts: Number(text(fields, 'attempts')),
  };
}

function text(fields: Map<string, Buffer>, name: string): string {
  return fields.get(name)?.toString('utf8') ?? '';
}

/**
 * Where a listing stands: which node is being scanned (its index in the client's master nodes; 0
 * on a single server), the SCAN cursor on it, and the keys of the last SCAN batch not yet looked
 * at. SCAN cannot resume in the middle of a batch, and skipping the first n keys of a repeated
 * batch could skip a record (bucket order changes as keys come and go), so a page that fills
 * mid-batch hands the rest of its batch on.
 */
export interface ListPosition {
  node: number;
  scan: string;
  /** Record keys (the part of a Redis key between the braces). */
  pending: string[];
}

export const LIST_START: ListPosition = { node: 0, scan: '0', pending: [] };

export function encodeCursor(position: ListPosition): string {
  return Buffer.from(JSON.stringify(position), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): ListPosition {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null) {
      const { node, scan, pending } = parsed as { node?: unknown; scan?: unknown; pending?: unknown };
      if (
        Number.isSafeInteger(node) &&
        (node as number) >= 0 &&
        typeof scan === 'string' &&
        /^\d+$/.test(scan) &&
        Array.isArray(pending) &&
        pending.every((key) => typeof key === 'string')
      ) {
        return { node: node as number, scan, pending: pending as string[] };
      }
    }
  } catch {
    // Reported below with the same message as a well-formed cursor of the wrong shape.
  }
  throw new IdempotencyError(
    ErrorCode.INVALID_OPTIONS,
    '[idem] [redis] list(): the cursor is not one this store returned; pass the nextCursor of the previous page, or no cursor to start over.',
  );
}
