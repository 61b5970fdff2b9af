/**
 * The rules of the journal contract (see `JournalStore` in `journal.ts`), written once, as
 * `claim-rules.ts` writes the claim's. Stores that decide in JavaScript inside their own atomic
 * section (memory) call them; stores whose operations run on the server as one statement or
 * script (SQLite, PostgreSQL, MySQL, Redis) carry the same rules in their SQL or Lua.
 */
import { isExpired } from './claim-rules.js';
import type { AppendInput, ReopenInput } from './journal.js';
import type { IdempotencyRecord } from './store.js';

/**
 * Whether `input` may append to the run whose record is `record` (`undefined`: none): it is
 * `in_progress`, holds `input.token` and has not expired by `input.nowMs`. The lease end does not
 * matter: a holder whose lease ended still appends until another takes the record over. The
 * store checks besides that the `seq` is free, unless it is 0, which starts the journal afresh.
 */
export function mayAppend(record: IdempotencyRecord | undefined, input: AppendInput): boolean {
  return (
    record !== undefined &&
    record.state === 'in_progress' &&
    record.token === input.token &&
    !isExpired(record, input.nowMs)
  );
}

/** Whether `input` may reopen `record` (`undefined`: none): it is `completed`, holds `input.expectedToken` and has not expired. */
export function mayReopen(record: IdempotencyRecord | undefined, input: ReopenInput): boolean {
  return (
    record !== undefined &&
    record.state === 'completed' &&
    record.token === input.expectedToken &&
    !isExpired(record, input.nowMs)
  );
}

/**
 * `record` reopened with `input` (the store has checked `mayReopen`): `in_progress` with the new
 * token, lease and retention end (set, not raised), no result, updated now, `attempts` + 1;
 * `createdAtMs` and `fingerprint` kept. A new object; `record` is not changed. The store removes
 * the journal in the same atomic step.
 */
export function reopenedRecord(record: IdempotencyRecord, input: ReopenInput): IdempotencyRecord {
  return {
    ...record,
    state: 'in_progress',
    token: input.token,
    leaseExpiresAtMs: input.leaseExpiresAtMs,
    expiresAtMs: input.expiresAtMs,
    result: null,
    updatedAtMs: input.nowMs,
    attempts: record.attempts + 1,
  };
}

/**
 * Whether a run whose record is `record` is due by `dueBy` (ms since epoch), so a recovery worker
 * may take it over: `in_progress`, its lease ended (`leaseExpiresAtMs <= dueBy`) and its retention
 * not (`expiresAtMs > dueBy`).
 */
export function isDueRun(record: IdempotencyRecord, dueBy: number): boolean {
  return record.state === 'in_progress' && record.leaseExpiresAtMs <= dueBy && !isExpired(record, dueBy);
}
