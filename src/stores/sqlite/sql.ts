/**
 * The SQL the SQLite store runs, one statement per function. Each takes the table name (already
 * validated by the store: letters, digits and underscore only) and returns the text to prepare.
 * Parameters are positional `?`, bound in the order each header lists them (?1..?n), except the
 * list queries and the journal's, which bind named `@` parameters. The journal of `table` is the
 * table `<table>_journal` (see `migrations.ts`). Times are ms since the epoch in INTEGER columns,
 * read back as number, or as bigint when the connection uses safe integers.
 */

/** The columns of a record, in the order `SqlRecordRow` (`../shared/sql-record.ts`) names them. */
const COLUMNS =
  'key, fingerprint, state, token, lease_expires_at_ms, expires_at_ms, result, created_at_ms, updated_at_ms, attempts';

/**
 * Reads one record by key, whatever its state or expiry.
 * ?1 key
 * Returns: zero or one `SqlRecordRow`.
 */
export function selectRecord(table: string): string {
  return `SELECT ${COLUMNS} FROM ${table} WHERE key = ?`;
}

/**
 * Reads the records of many keys at once, whatever their state or expiry, in one statement of
 * fixed text (so one prepared statement serves every list length): the keys come as one JSON
 * array, unpacked by `json_each`, and each is looked up by the primary key.
 * ?1 the keys, as a JSON array of strings
 * Returns: one `SqlRecordRow` per key that has a record, in no set order, each key at most once.
 */
export function selectRecords(table: string): string {
  return `SELECT ${COLUMNS} FROM ${table} WHERE key IN (SELECT value FROM json_each(?))`;
}

/**
 * Claims a key that has no record: inserts the fresh record, or does nothing when a record with
 * the key exists (whatever its state or expiry: the claim then reads it and decides). Run in the
 * group commit's IMMEDIATE transaction, after a read found no record.
 * ?1 key, ?2 fingerprint, ?3 token, ?4 lease_expires_at_ms, ?5 expires_at_ms, ?6 now (created),
 * ?7 now (updated)
 * Returns: changes = 1 if inserted (the claim is won), 0 if a record was there.
 */
export function insertFreshClaim(table: string): string {
  return `INSERT INTO ${table} (${COLUMNS})
VALUES (?, ?, 'in_progress', ?, ?, ?, NULL, ?, ?, 1)
ON CONFLICT (key) DO NOTHING`;
}

/**
 * Writes a fresh claim: inserts the record, or overwrites one the claim transaction has already
 * judged expired (`expires_at_ms <= now`). Only ever run inside the claim's IMMEDIATE transaction.
 * ?1 key, ?2 fingerprint, ?3 token, ?4 lease_expires_at_ms, ?5 expires_at_ms, ?6 now (created),
 * ?7 now (updated)
 * Returns: nothing; one row changed.
 */
export function upsertFreshClaim(table: string): string {
  return `INSERT INTO ${table} (${COLUMNS})
VALUES (?, ?, 'in_progress', ?, ?, ?, NULL, ?, ?, 1)
ON CONFLICT (key) DO UPDATE SET
  fingerprint = excluded.fingerprint,
  state = 'in_progress',
  token = excluded.token,
  lease_expires_at_ms = excluded.lease_expires_at_ms,
  expires_at_ms = excluded.expires_at_ms,
  result = NULL,
  created_at_ms = excluded.created_at_ms,
  updated_at_ms = excluded.updated_at_ms,
  attempts = 1`;
}

/**
 * Takes over an in-progress record whose lease ended: new token, lease and retention, one more
 * attempt, `created_at_ms` kept. Only ever run inside the claim's IMMEDIATE transaction, after it
 * has checked state, lease end and fingerprint.
 * ?1 token, ?2 lease_expires_at_ms, ?3 expires_at_ms, ?4 now (updated), ?5 key
 * Returns: nothing; one row changed.
 */
export function takeOverClaim(table: string): string {
  return `UPDATE ${table}
SET token = ?, lease_expires_at_ms = ?, expires_at_ms = ?, updated_at_ms = ?, attempts = attempts + 1
WHERE key = ?`;
}

/**
 * Stores the result and marks the record completed, only while the caller's token holds.
 * ?1 result (BLOB), ?2 expires_at_ms (retention from completion), ?3 now (updated), ?4 key, ?5 token
 * Returns: changes = 1 if stored, 0 if the token no longer holds.
 */
export function completeRecord(table: string): string {
  return `UPDATE ${table}
SET state = 'completed', result = ?, expires_at_ms = ?, updated_at_ms = ?
WHERE key = ? AND state = 'in_progress' AND token = ?`;
}

/**
 * Deletes an in-progress record, only while the caller's token holds, so a retry may run again.
 * ?1 key, ?2 token
 * Returns: changes = 1 if deleted, 0 if the token no longer holds.
 */
export function releaseRecord(table: string): string {
  return `DELETE FROM ${table} WHERE key = ? AND state = 'in_progress' AND token = ?`;
}

/**
 * Moves the lease end of an in-progress record and raises its retention end (never lowers it),
 * only while the caller's token holds (the rule of `extendedRecord`).
 * ?1 lease_expires_at_ms, ?2 expires_at_ms (the least retention end), ?3 now (updated), ?4 key,
 * ?5 token
 * Returns: changes = 1 if extended, 0 if the token no longer holds.
 */
export function extendLease(table: string): string {
  return `UPDATE ${table}
SET lease_expires_at_ms = ?, expires_at_ms = MAX(expires_at_ms, ?), updated_at_ms = ?
WHERE key = ? AND state = 'in_progress' AND token = ?`;
}

/**
 * Deletes a record whatever its state. For operators.
 * ?1 key
 * Returns: changes = 1 if a record was there.
 */
export function deleteRecord(table: string): string {
  return `DELETE FROM ${table} WHERE key = ?`;
}

/**
 * One page of records in key order, from the start of the table. Fetch one row more than the
 * page holds to learn whether another page follows.
 * `@state` the state to keep, or NULL for both; `@nowMs` leave out records expired by then, or
 * NULL to keep them; `@limit` row limit
 * Returns: up to `@limit` `SqlRecordRow`s.
 */
export function listFirstPage(table: string): string {
  return `SELECT ${COLUMNS} FROM ${table}
WHERE (@state IS NULL OR state = @state) AND (@nowMs IS NULL OR expires_at_ms > @nowMs)
ORDER BY key LIMIT @limit`;
}

/**
 * One page of records in key order, after the cursor (the last key of the previous page).
 * `@cursor` the last key already returned; `@state`, `@nowMs`, `@limit` as in `listFirstPage`
 * Returns: up to `@limit` `SqlRecordRow`s.
 */
export function listNextPage(table: string): string {
  return `SELECT ${COLUMNS} FROM ${table}
WHERE key > @cursor AND (@state IS NULL OR state = @state) AND (@nowMs IS NULL OR expires_at_ms > @nowMs)
ORDER BY key LIMIT @limit`;
}

/**
 * Deletes up to a limit of expired records, oldest retention end first.
 * ?1 now, ?2 limit
 * Returns: changes = how many records were deleted.
 */
export function sweepExpired(table: string): string {
  return `DELETE FROM ${table} WHERE rowid IN (
  SELECT rowid FROM ${table} WHERE expires_at_ms <= ? ORDER BY expires_at_ms LIMIT ?
)`;
}

/**
 * Appends a journal entry, only while the run's record is in progress, holds the token and has
 * not expired (the fencing rule); an entry already at that seq is left as it is. One statement,
 * so atomic: SQLite takes the write lock before it reads the record.
 * `@key`, `@seq`, `@data` (BLOB), `@nowMs` (the entry's at_ms, and the time the record must not
 * have expired by), `@token`
 * Returns: changes = 1 if written, 0 if the token no longer holds or the seq is taken.
 */
export function appendEntry(table: string): string {
  return `INSERT INTO ${table}_journal (key, seq, data, at_ms)
SELECT @key, @seq, @data, @nowMs WHERE EXISTS (
  SELECT 1 FROM ${table}
  WHERE key = @key AND state = 'in_progress' AND token = @token AND expires_at_ms > @nowMs
)
ON CONFLICT (key, seq) DO NOTHING`;
}

/**
 * Deletes every entry of a run, only while the run's record is in progress, holds the token and
 * has not expired: the first half of appending seq 0, run with `appendEntry` in one IMMEDIATE
 * transaction, so a refused append removes nothing.
 * `@key`, `@token`, `@nowMs`
 * Returns: changes = how many entries were deleted.
 */
export function clearFencedJournal(table: string): string {
  return `DELETE FROM ${table}_journal
WHERE key = @key AND EXISTS (
  SELECT 1 FROM ${table}
  WHERE key = @key AND state = 'in_progress' AND token = @token AND expires_at_ms > @nowMs
)`;
}

/**
 * Every entry of a key, in seq order.
 * ?1 key
 * Returns: zero or more rows (seq, data, at_ms).
 */
export function selectEntries(table: string): string {
  return `SELECT seq, data, at_ms FROM ${table}_journal WHERE key = ? ORDER BY seq`;
}

/**
 * Reopens a completed, unexpired record that holds the expected token: in progress with the new
 * token, lease and retention end (set, not raised), no result, one more attempt, updated now;
 * fingerprint and created_at_ms kept (the rule of `reopenedRecord`). Run with `clearJournal` in
 * one IMMEDIATE transaction.
 * `@token`, `@leaseExpiresAtMs`, `@expiresAtMs`, `@nowMs`, `@key`, `@expectedToken`
 * Returns: changes = 1 if reopened, 0 otherwise.
 */
export function reopenRecord(table: string): string {
  return `UPDATE ${table}
SET state = 'in_progress', token = @token, lease_expires_at_ms = @leaseExpiresAtMs,
  expires_at_ms = @expiresAtMs, result = NULL, updated_at_ms = @nowMs, attempts = attempts + 1
WHERE key = @key AND state = 'completed' AND token = @expectedToken AND expires_at_ms > @nowMs`;
}

/**
 * Deletes every entry of a key: the second half of `reopenRecord`, once it reopened the record.
 * ?1 key
 * Returns: changes = how many entries were deleted.
 */
export function clearJournal(table: string): string {
  return `DELETE FROM ${table}_journal WHERE key = ?`;
}

/** The filter of `runs` with `dueBy`: in progress, lease ended, retention not (the rule of `isDueRun`). */
const DUE = `(@dueBy IS NULL OR (
  r.state = 'in_progress' AND r.lease_expires_at_ms <= @dueBy AND r.expires_at_ms > @dueBy
))`;

/**
 * One page of runs (keys with an entry 0 and a record) in key order, from the first. It reads
 * the partial index of entries 0, and each record by its key. Fetch one row more than the page
 * holds to learn whether another page follows.
 * `@dueBy` only the runs due by then, or NULL for every run; `@limit` row limit
 * Returns: up to `@limit` rows (key).
 */
export function runsFirstPage(table: string): string {
  return `SELECT e.key AS key FROM ${table}_journal e JOIN ${table} r ON r.key = e.key
WHERE e.seq = 0 AND ${DUE}
ORDER BY e.key LIMIT @limit`;
}

/**
 * One page of runs in key order, after the cursor (the last key of the previous page).
 * `@cursor` the last key already returned; `@dueBy`, `@limit` as in `runsFirstPage`
 * Returns: up to `@limit` rows (key).
 */
export function runsNextPage(table: string): string {
  return `SELECT e.key AS key FROM ${table}_journal e JOIN ${table} r ON r.key = e.key
WHERE e.seq = 0 AND e.key > @cursor AND ${DUE}
ORDER BY e.key LIMIT @limit`;
}
