/**
 * The claim and extension rules of the store contract (see `Store.claim`, `Store.extend`), written
 * once. Stores that decide in JavaScript inside their own atomic section (memory, SQLite) use
 * `decideClaim` and `extendedRecord`; stores whose operations run on the server as one statement
 * or script (PostgreSQL, MySQL, Redis) carry the same rules in their SQL or Lua, and use
 * `isClaimable` to judge a record they read beforehand.
 * Writing a store of your own? These are the answers it must give.
 */
import type { ClaimInput, ClaimResult, ExtendInput, IdempotencyRecord } from './store.js';

/** Whether `record`'s retention has ended at `nowMs` (`expiresAtMs <= nowMs`); an expired record counts as absent. */
export function isExpired(record: Pick<IdempotencyRecord, 'expiresAtMs'>, nowMs: number): boolean {
  return record.expiresAtMs <= nowMs;
}

/**
 * Whether `input` may take over `record`: it is `in_progress`, its lease ended by `input.nowMs`
 * (`leaseExpiresAtMs <= nowMs`) and it was claimed with the same fingerprint.
 */
export function canTakeOver(record: IdempotencyRecord, input: ClaimInput): boolean {
  return (
    record.state === 'in_progress' && record.leaseExpiresAtMs <= input.nowMs && record.fingerprint === input.fingerprint
  );
}

/** Whether a claim with `input` wins over the existing `record`: it has expired, or it may be taken over. */
export function isClaimable(record: IdempotencyRecord, input: ClaimInput): boolean {
  return isExpired(record, input.nowMs) || canTakeOver(record, input);
}

/**
 * The record a winning claim writes where there was none, or only an expired one: `in_progress`
 * with the claimant's token, lease and retention, no result, created now, `attempts` 1.
 */
export function freshRecord(input: ClaimInput): IdempotencyRecord {
  return {
    key: input.key,
    fingerprint: input.fingerprint,
    state: 'in_progress',
    token: input.token,
    leaseExpiresAtMs: input.leaseExpiresAtMs,
    expiresAtMs: input.expiresAtMs,
    result: null,
    createdAtMs: input.nowMs,
    updatedAtMs: input.nowMs,
    attempts: 1,
  };
}

/**
 * `record` after `input` took it over: the claimant's token, lease and retention, updated now,
 * `attempts` + 1; everything else (`createdAtMs` included) kept. A new object; `record` is not changed.
 */
export function takenOverRecord(record: IdempotencyRecord, input: ClaimInput): IdempotencyRecord {
  return {
    ...record,
    token: input.token,
    leaseExpiresAtMs: input.leaseExpiresAtMs,
    expiresAtMs: input.expiresAtMs,
    updatedAtMs: input.nowMs,
    attempts: record.attempts + 1,
  };
}

/**
 * The answer to a claim with `input` when the store holds `current` (`undefined`: no record).
 * When `claimed` is true, `record` is what the store must now keep: a fresh record (`takeover`
 * false) or the taken-over one. When false, `record` is `current` itself, unchanged. Decides
 * only: the caller writes, inside the same atomic section it read `current` in.
 */
export function decideClaim(current: IdempotencyRecord | undefined, input: ClaimInput): ClaimResult {
  if (current === undefined || isExpired(current, input.nowMs)) {
    return { claimed: true, takeover: false, record: freshRecord(input) };
  }
  if (canTakeOver(current, input)) return { claimed: true, takeover: true, record: takenOverRecord(current, input) };
  return { claimed: false, record: current };
}

/**
 * `record` after its holder extended the lease with `input` (the store has checked that the record
 * is `in_progress` with `input.token`): the new lease end, the retention end raised to
 * `input.expiresAtMs` when that is later (never lowered), updated now. A new object; `record` is
 * not changed. Raising retention is what keeps a long run's record: otherwise a holder kept alive
 * by its heartbeat past `expiresAtMs` would find its key counted as absent and claimed by another.
 */
export function extendedRecord(record: IdempotencyRecord, input: ExtendInput): IdempotencyRecord {
  return {
    ...record,
    leaseExpiresAtMs: input.leaseExpiresAtMs,
    expiresAtMs: Math.max(record.expiresAtMs, input.expiresAtMs),
    updatedAtMs: input.nowMs,
  };
}
