/**
 * A record as the SQL stores (SQLite, PostgreSQL, MySQL) keep it: one row, snake_case columns,
 * times in ms as BIGINT. Each store keeps its own SQL in its own folder; this is what they read back.
 */
import { isExpired } from '../core/claim-rules.js';
import type { IdempotencyRecord, ListPage, RecordState } from '../core/store.js';

/**
 * An integer column as a driver returns it: better-sqlite3 as number (bigint on a connection that
 * reads integers safely), `pg` BIGINT as string, mysql2 as number or string (`bigNumberStrings`).
 */
export type SqlInteger = number | bigint | string;

/** One record row, columns in the order the stores select them. */
export interface SqlRecordRow {
  key: string;
  fingerprint: string;
  state: string;
  token: string;
  lease_expires_at_ms: SqlInteger;
  expires_at_ms: SqlInteger;
  /** The encoded outcome (a Buffer from `pg` and mysql2); NULL while in progress. */
  result: Uint8Array | null;
  created_at_ms: SqlInteger;
  updated_at_ms: SqlInteger;
  attempts: SqlInteger;
}

/** The record a row holds, with every time and count as a number. */
export function toRecord(row: SqlRecordRow): IdempotencyRecord {
  return {
    key: row.key,
    fingerprint: row.fingerprint,
    state: row.state as RecordState,
    token: row.token,
    leaseExpiresAtMs: Number(row.lease_expires_at_ms),
    expiresAtMs: Number(row.expires_at_ms),
    result: row.result,
    createdAtMs: Number(row.created_at_ms),
    updatedAtMs: Number(row.updated_at_ms),
    attempts: Number(row.attempts),
  };
}

/**
 * One page of `list` from rows fetched with a limit of `limit + 1`: the row past the page is not
 * returned, it only says that another page follows, so the last page has no cursor.
 */
export function pageOf<Row>(rows: Row[], limit: number, recordOf: (row: Row) => IdempotencyRecord): ListPage {
  const records = rows.slice(0, limit).map(recordOf);
  return { records, nextCursor: rows.length > limit ? records.at(-1)?.key : undefined };
}

/**
 * The answer of `getMany` (see `Store.getMany`) from the rows one query found for `keys`, in any
 * order and each at most once: for each key, in the order of `keys`, its record (`recordOf` of
 * its row), or `null` when no row has that key or, with `nowMs`, the record has expired
 * (`expiresAtMs <= nowMs`, as `get` judges). A key given twice gets two equal records, not one
 * object twice, so a caller may change one answer without changing another.
 */
export function recordsInOrder<Row>(
  keys: readonly string[],
  rows: readonly Row[],
  recordOf: (row: Row) => IdempotencyRecord,
  nowMs?: number,
): (IdempotencyRecord | null)[] {
  const found = new Map<string, IdempotencyRecord>();
  for (const row of rows) {
    const record = recordOf(row);
    if (nowMs === undefined || !isExpired(record, nowMs)) found.set(record.key, record);
  }
  const given = new Set<string>();
  return keys.map((key) => {
    const record = found.get(key);
    if (record === undefined) return null;
    if (given.has(key)) return { ...record };
    given.add(key);
    return record;
  });
}
