/**
 * The statements of the MySQL / MariaDB store, one per operation, valid on MySQL 8 and MariaDB
 * 10.5+. `table` is a validated identifier, quoted here; everything else is a named parameter
 * (`:key`), sent with `namedPlaceholders` on. Keys, tokens and fingerprints are bound as bytes.
 */

/** The columns every statement that returns a record selects, in `MysqlRecordRow` order. */
const columns = `idem_key, fingerprint, state, token, lease_expires_at_ms, expires_at_ms, result,
  created_at_ms, updated_at_ms, attempts`;

/**
 * A record row as `mysql2` returns it: VARBINARY and LONGBLOB as Buffer; BIGINT as number, or as
 * string when the pool sets `supportBigNumbers` with `bigNumberStrings`, so the store converts.
 */
export interface MysqlRecordRow {
  idem_key: Buffer | string;
  fingerprint: Buffer | string;
  state: string;
  token: Buffer | string;
  lease_expires_at_ms: number | string;
  expires_at_ms: number | string;
  result: Buffer | null;
  created_at_ms: number | string;
  updated_at_ms: number | string;
  attempts: number | string;
}

/** The existing row may be taken over: in progress, lease ended, same fingerprint. */
const takeover = `(state = 'in_progress' AND lease_expires_at_ms <= :nowMs AND fingerprint = :fingerprint)`;
/** The existing row may be replaced or taken over, judged on its values before this claim. */
const claimable = `(expires_at_ms <= :nowMs OR ${takeover})`;
/**
 * This claim won: true in every assignment after `token`, whichever way the server evaluates
 * them. By default MySQL and MariaDB run assignments left to right, each seeing the columns the
 * previous ones changed, so `claimable` would turn false once the lease moves; the new token then
 * says the claim won (tokens are fresh per claim). With MariaDB's SIMULTANEOUS_ASSIGNMENT mode
 * every assignment sees the old row instead, and `claimable` says it.
 */
const won = `(token = :token OR ${claimable})`;

export type MysqlStatements = ReturnType<typeof mysqlStatements>;

export function mysqlStatements(table: string) {
  const t = `\`${table}\``;
  return {
    /*
     * claim: inserts a fresh record or, on the existing key, in the same statement replaces an
     * expired one (`expires_at_ms <= now`: attempts 1, created now) or takes over an in-progress
     * one whose lease ended and whose fingerprint matches (attempts + 1, created kept); any other
     * record is left as it is. `attempts` and `created_at_ms` come first because they must judge
     * the row before anything changed; `token` next, then the rest follow `won`.
     * :key, :fingerprint, :token, :nowMs, :leaseExpiresAtMs, :expiresAtMs (ms since epoch).
     * Returns an OK packet only: MySQL has no RETURNING here, and affected rows cannot tell an
     * insert from an untouched row when the client sets CLIENT_FOUND_ROWS (mysql2 does), so the
     * caller reads the row back with `select` and compares the token.
     */
    claim: `
      INSERT INTO ${t} (${columns})
      VALUES (:key, :fingerprint, 'in_progress', :token, :leaseExpiresAtMs, :expiresAtMs, NULL, :nowMs, :nowMs, 1)
      ON DUPLICATE KEY UPDATE
        attempts = IF(expires_at_ms <= :nowMs, 1, IF(${takeover}, attempts + 1, attempts)),
        created_at_ms = IF(expires_at_ms <= :nowMs, :nowMs, created_at_ms),
        token = IF(${claimable}, :token, token),
        fingerprint = IF(${won}, :fingerprint, fingerprint),
        state = IF(${won}, 'in_progress', state),
        result = IF(${won}, NULL, result),
        updated_at_ms = IF(${won}, :nowMs, updated_at_ms),
        lease_expires_at_ms = IF(${won}, :leaseExpiresAtMs, lease_expires_at_ms),
        expires_at_ms = IF(${won}, :expiresAtMs, expires_at_ms)`,

    /*
     * insertFresh: claims a key that has no record, in one statement: inserts the fresh record,
     * or fails with ER_DUP_ENTRY (nothing written) when the key has a record, whatever its state
     * or expiry (the caller then runs `claim`).
     * :key, :fingerprint, :token, :nowMs, :leaseExpiresAtMs, :expiresAtMs (ms since epoch).
     * Returns an OK packet: one row inserted means the claim won.
     */
    insertFresh: `
      INSERT INTO ${t} (${columns})
      VALUES (:key, :fingerprint, 'in_progress', :token, :leaseExpiresAtMs, :expiresAtMs, NULL, :nowMs, :nowMs, 1)`,

    /*
     * select: reads one record; with :nowMs, only if it has not expired (`expires_at_ms > now`).
     * :key, :nowMs (ms since epoch, or NULL for any expiry).
     * Returns the row, or none.
     */
    select: `
      SELECT ${columns} FROM ${t}
      WHERE idem_key = :key AND (:nowMs IS NULL OR expires_at_ms > :nowMs)`,

    /*
     * complete: stores the result and marks the record completed, if it is in progress with the
     * caller's token. The WHERE clause is the fence: a holder whose lease was taken over matches
     * no row.
     * :key, :token, :result (bytes), :nowMs, :expiresAtMs (new retention end, ms since epoch).
     * Returns affected rows: 1 when completed, 0 when the token no longer holds.
     */
    complete: `
      UPDATE ${t}
      SET state = 'completed', result = :result, expires_at_ms = :expiresAtMs, updated_at_ms = :nowMs
      WHERE idem_key = :key AND token = :token AND state = 'in_progress'`,

    /*
     * release: deletes the record if it is in progress with the caller's token.
     * :key, :token.
     * Returns affected rows: 1 when deleted, 0 when the token no longer holds.
     */
    release: `DELETE FROM ${t} WHERE idem_key = :key AND token = :token AND state = 'in_progress'`,

    /*
     * extend: moves the lease end and raises the retention end (never lowers it) if the record
     * is in progress with the caller's token (the rule of `extendedRecord`).
     * :key, :token, :nowMs, :leaseExpiresAtMs, :expiresAtMs (least retention end; ms since epoch).
     * Returns affected rows and the info line `Rows matched: n  Changed: m`: without
     * CLIENT_FOUND_ROWS, an extension to the lease end already stored changes no row, so
     * matched rows, not affected rows, say whether the token holds.
     */
    extend: `
      UPDATE ${t}
      SET lease_expires_at_ms = :leaseExpiresAtMs, expires_at_ms = GREATEST(expires_at_ms, :expiresAtMs),
        updated_at_ms = :nowMs
      WHERE idem_key = :key AND token = :token AND state = 'in_progress'`,

    /*
     * remove: deletes the record whatever its state.
     * :key.
     * Returns affected rows: 1 when there was one, 0 otherwise.
     */
    remove: `DELETE FROM ${t} WHERE idem_key = :key`,

    /*
     * list: one page in key (byte) order, after the cursor, optionally of one state and only
     * records that have not expired. NULL parameters drop their filter.
     * :cursor (the last key of the previous page, or NULL), :state (or NULL), :nowMs (or NULL),
     * :limit (rows to return: the page size plus one, to learn whether another page follows).
     * Returns up to :limit rows.
     */
    list: `
      SELECT ${columns} FROM ${t}
      WHERE (:cursor IS NULL OR idem_key > :cursor)
        AND (:state IS NULL OR state = :state)
        AND (:nowMs IS NULL OR expires_at_ms > :nowMs)
      ORDER BY idem_key
      LIMIT :limit`,

    /*
     * sweep: deletes up to :limit records whose retention ended (`expires_at_ms <= now`), oldest
     * first. The ORDER BY names the primary key too, so statement-based replication deletes the
     * same rows on replicas.
     * :nowMs (ms since epoch), :limit.
     * Returns affected rows: how many were deleted.
     */
    sweep: `
      DELETE FROM ${t}
      WHERE expires_at_ms <= :nowMs
      ORDER BY expires_at_ms, idem_key
      LIMIT :limit`,
  };
}

/**
 * Reads the records of `count` keys at once, whatever their expiry, each looked up by the primary
 * key. The text depends on `count` (one placeholder per key), so mysql2 parses it per call, as it
 * does every statement the store sends through `query`.
 * :k0 .. :k<count-1> (the keys, as bytes). Returns one row per key that has a record, in no set
 * order; a key given twice comes back once.
 */
export function selectManySql(table: string, count: number): string {
  const placeholders = Array.from({ length: count }, (_, i) => `:k${i}`).join(', ');
  return `SELECT ${columns} FROM \`${table}\` WHERE idem_key IN (${placeholders})`;
}
