/**
 * How the Redis store reads its replies: records and journal entries from a hash's fields, and the
 * list and runs cursors in and out of their opaque strings.
 */
import { ErrorCode, IdempotencyError } from '../../core/errors.js';
import type { JournalEntry } from '../../core/journal.js';
import type { IdempotencyRecord } from '../../core/store.js';

/** The hash fields of a record, in the order `decodeRecord` reads them (HMGET's reply). */
export const RECORD_FIELDS = [
  'key',
  'fingerprint',
  'state',
  'token',
  'leaseExpiresAtMs',
  'expiresAtMs',
  'result',
  'createdAtMs',
  'updatedAtMs',
  'attempts',
] as const;

/**
 * A record from the reply of `HMGET <hash> ...RECORD_FIELDS` (bulk strings as Buffers, `null` for a
 * missing field), or `null` when there is no record (or the hash is not one of Idem's records).
 * Fields are read by name rather than with HGETALL so that a run's journal, kept in the same hash,
 * is never read with its record.
 */
export function decodeRecord(reply: unknown): IdempotencyRecord | null {
  if (!Array.isArray(reply) || reply.length !== RECORD_FIELDS.length) return null;
  // Read by position, in RECORD_FIELDS order: key, fingerprint, state, token, leaseExpiresAtMs,
  // expiresAtMs, result, createdAtMs, updatedAtMs, attempts.
  const state = text(reply[2]);
  if (state !== 'in_progress' && state !== 'completed') return null;
  const result: unknown = reply[6];
  return {
    key: text(reply[0]),
    fingerprint: text(reply[1]),
    state,
    token: text(reply[3]),
    leaseExpiresAtMs: Number(text(reply[4])),
    expiresAtMs: Number(text(reply[5])),
    // A copy, so the record owns its bytes rather than a view into the socket's read buffer.
    result: Buffer.isBuffer(result) ? new Uint8Array(result) : null,
    createdAtMs: Number(text(reply[7])),
    updatedAtMs: Number(text(reply[8])),
    attempts: Number(text(reply[9])),
  };
}

/** A field of HMGET's reply as text: '' for a missing field (or anything but bulk bytes). */
function text(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('utf8') : '';
}

/** The hash field of the journal entry `seq` (see `APPEND` in `scripts.ts`). */
export function entryField(seq: number): string {
  return `${ENTRY_FIELD_START}${seq}`;
}

const ENTRY_FIELD_START = 'j:';
const COLON = 0x3a;

/**
 * The journal entries in HGETALL's flat `[field, value, ...]` reply of a record's hash, in `seq`
 * order. An entry is the field `j:<seq>` whose value is `<atMs>:<data bytes>`.
 */
export function decodeEntries(reply: unknown): JournalEntry[] {
  if (!Array.isArray(reply)) return [];
  const entries: JournalEntry[] = [];
  for (let i = 0; i + 1 < reply.length; i += 2) {
    const field: unknown = reply[i];
    const value: unknown = reply[i + 1];
    if (!Buffer.isBuffer(field) || !Buffer.isBuffer(value)) continue;
    const name = field.toString('utf8');
    if (!name.startsWith(ENTRY_FIELD_START)) continue;
    const colon = value.indexOf(COLON);
    entries.push({
      seq: Number(name.slice(ENTRY_FIELD_START.length)),
      atMs: Number(value.subarray(0, colon).toString('utf8')),
      // A copy, as for results.
      data: new Uint8Array(value.subarray(colon + 1)),
    });
  }
  return entries.sort((a, b) => a.seq - b.seq);
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

/** The cursor of a runs page: the last index member the page looked at. */
export function encodeRunsCursor(afterKey: string): string {
  return Buffer.from(JSON.stringify({ after: afterKey }), 'utf8').toString('base64url');
}

/** The index member a runs page resumes after. */
export function decodeRunsCursor(cursor: string): string {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null) {
      const { after } = parsed as { after?: unknown };
      if (typeof after === 'string' && after !== '') return after;
    }
  } catch {
    // Reported below with the same message as a well-formed cursor of the wrong shape.
  }
  throw badRunsCursor();
}

/** Where a page of due runs stops: the score and key of the last due-index member it looked at. */
export interface DuePosition {
  score: number;
  key: string;
}

/** The cursor of a page of due runs. */
export function encodeDueCursor(position: DuePosition): string {
  return Buffer.from(JSON.stringify({ score: position.score, after: position.key }), 'utf8').toString('base64url');
}

/** The due-index member a page of due runs resumes after. */
export function decodeDueCursor(cursor: string): DuePosition {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null) {
      const { score, after } = parsed as { score?: unknown; after?: unknown };
      if (typeof score === 'number' && Number.isFinite(score) && typeof after === 'string' && after !== '') {
        return { score, key: after };
      }
    }
  } catch {
    // Reported below with the same message as a well-formed cursor of the wrong shape.
  }
  throw badRunsCursor();
}

function badRunsCursor(): IdempotencyError {
  return new IdempotencyError(
    ErrorCode.INVALID_OPTIONS,
    '[idem] [redis] runs(): the cursor is not one this store returned; pass the nextCursor of the previous page, or no cursor to start over.',
  );
}
