/**
 * The statements of the PostgreSQL store, one per operation. `table` is the quoted, validated
 * (optionally schema-qualified) table name; everything else is a bind parameter. Numbers are
 * BIGINT milliseconds. A record comes back as a `SqlRecordRow` (`../shared/sql-record.ts`) with
 * BIGINT as string and BYTEA as Buffer, which `toRecord` converts.
 */

/** The columns every statement that returns a record selects, in `SqlRecordRow` order. */
const columns = `key, fingerprint, state, token, lease_expires_at_ms, expires_at_ms, result,
  created_at_ms, updated_at_ms, attempts`;

/**
 * What a winning claim writes over the row it replaces, in both claim statements: the claimant's
 * fingerprint, token, lease and retention, in progress, no result.
 */
const claimedColumns = `fingerprint = EXCLUDED.fingerprint,
          state = 'in_progress',
          token = EXCLUDED.token,
          lease_expires_at_ms = EXCLUDED.lease_expires_at_ms,
          expires_at_ms = EXCLUDED.expires_at_ms,
          result = NULL`;

export type PostgresStatements = ReturnType<typeof postgresStatements>;

export function postgresStatements(table: string) {
  return {
    /*
     * claim: in one statement, reads the record and, unless it stands (live, and neither expired
     * nor taken over), inserts a fresh record, or replaces an expired one (attempts 1, created
     * now), or takes over an in-progress one whose lease ended and whose fingerprint matches
     * (attempts + 1, created kept). When the record stands, the INSERT selects no row: no row
     * lock and no transaction id are taken, so a replay costs one read and no WAL flush.
     * $1 key, $2 fingerprint, $3 token, $4 now ms, $5 lease end ms, $6 retention end ms.
     * Returns one row: `won` true with the claimed record, or `won` false with the record as
     * this statement's snapshot saw it. No row when the key was absent from the snapshot but a
     * concurrent claim committed it first (ON CONFLICT sees that row, the snapshot does not).
     */
    claim: `
      WITH current AS (
        SELECT ${columns} FROM ${table} WHERE key = $1::text
      ), claimed AS (
        INSERT INTO ${table} AS r (${columns})
        SELECT $1::text, $2::text, 'in_progress', $3::text, $5::bigint, $6::bigint, NULL, $4::bigint, $4::bigint, 1
        WHERE NOT EXISTS (
          SELECT 1 FROM current c
          WHERE c.expires_at_ms > $4::bigint
            AND NOT (c.state = 'in_progress' AND c.lease_expires_at_ms <= $4::bigint AND c.fingerprint = $2::text)
        )
        ON CONFLICT (key) DO UPDATE SET
          ${claimedColumns},
          created_at_ms = CASE WHEN r.expires_at_ms <= $4::bigint THEN $4::bigint ELSE r.created_at_ms END,
          updated_at_ms = $4::bigint,
          attempts = CASE WHEN r.expires_at_ms <= $4::bigint THEN 1 ELSE r.attempts + 1 END
        WHERE r.expires_at_ms <= $4::bigint
           OR (r.state = 'in_progress' AND r.lease_expires_at_ms <= $4::bigint AND r.fingerprint = $2::text)
        RETURNING ${columns}
      )
      SELECT true AS won, ${columns} FROM claimed
      UNION ALL
      SELECT false AS won, ${columns} FROM current WHERE NOT EXISTS (SELECT 1 FROM claimed)`,

    /*
     * claimMany: `claim` for many keys in one statement (one transaction, one WAL flush), each
     * with its own fingerprint, token and times, by the same rules. Keys are distinct within a
     * call (ON CONFLICT cannot change one row twice). The rows are inserted in key order, so two
     * batches that share keys lock them in the same order.
     * $1 keys, $2 fingerprints, $3 tokens, $4 now ms, $5 lease ends ms, $6 retention ends ms
     * (arrays, one element per claim).
     * Returns at most one row per key, as `claim` does: `won` true with the claimed record, or
     * `won` false with the record as the snapshot saw it; no row for a key a concurrent claim
     * committed after the snapshot.
     */
    claimMany: `
      WITH input AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[])
          AS b(in_key, in_fingerprint, in_token, in_now_ms, in_lease_expires_at_ms, in_expires_at_ms)
      ), current AS (
        SELECT ${columns} FROM input JOIN ${table} ON key = in_key
      ), claimed AS (
        INSERT INTO ${table} AS r (${columns})
        SELECT in_key, in_fingerprint, 'in_progress', in_token, in_lease_expires_at_ms, in_expires_at_ms, NULL,
          in_now_ms, in_now_ms, 1
        FROM input
        WHERE NOT EXISTS (
          SELECT 1 FROM current c
          WHERE c.key = in_key
            AND c.expires_at_ms > in_now_ms
            AND NOT (c.state = 'in_progress' AND c.lease_expires_at_ms <= in_now_ms AND c.fingerprint = in_fingerprint)
        )
        ORDER BY in_key COLLATE "C"
        ON CONFLICT (key) DO UPDATE SET
          ${claimedColumns},
          created_at_ms = CASE WHEN r.expires_at_ms <= EXCLUDED.updated_at_ms THEN EXCLUDED.updated_at_ms
            ELSE r.created_at_ms END,
          updated_at_ms = EXCLUDED.updated_at_ms,
          attempts = CASE WHEN r.expires_at_ms <= EXCLUDED.updated_at_ms THEN 1 ELSE r.attempts + 1 END
        WHERE r.expires_at_ms <= EXCLUDED.updated_at_ms
           OR (r.state = 'in_progress' AND r.lease_expires_at_ms <= EXCLUDED.updated_at_ms
               AND r.fingerprint = EXCLUDED.fingerprint)
        RETURNING ${columns}
      )
      SELECT true AS won, ${columns} FROM claimed
      UNION ALL
      SELECT false AS won, ${columns} FROM current c WHERE NOT EXISTS (SELECT 1 FROM claimed w WHERE w.key = c.key)`,

    /*
     * select: reads one record, whatever its expiry.
     * $1 key. Returns the row, or none.
     */
    select: `SELECT ${columns} FROM ${table} WHERE key = $1`,

    /*
     * selectLive: reads one record unless it has expired.
     * $1 key, $2 now ms. Returns the row, or none when absent or `expires_at_ms <= now`.
     */
    selectLive: `SELECT ${columns} FROM ${table} WHERE key = $1 AND expires_at_ms > $2`,

    /*
     * selectMany: reads the records of many keys at once, whatever their expiry, one primary-key
     * lookup per key (a nested loop over the array). Written as a join on `unnest` rather than
     * `key = ANY($1)`: with a thousand keys the planner judged ANY cheaper as a scan of the whole
     * table, twice as slow on 100,000 records and slower as the table grows. The column's "C"
     * collation wins over the array's default, so the index serves the join.
     * $1 keys (text[], no duplicates). Returns one row per key that has a record, in no set order.
     */
    selectMany: `SELECT ${columns} FROM unnest($1::text[]) AS wanted(wanted_key) JOIN ${table} ON key = wanted_key`,

    /*
     * complete: stores the result and marks the record completed, if the token still holds.
     * $1 key, $2 token, $3 result bytes, $4 now ms, $5 new retention end ms.
     * Returns the row count: 1 when completed, 0 when the token no longer holds.
     */
    complete: `
      UPDATE ${table}
      SET state = 'completed', result = $3, updated_at_ms = $4, expires_at_ms = $5
      WHERE key = $1 AND token = $2 AND state = 'in_progress'`,

    /*
     * completeMany: `complete` for many records in one statement (one transaction, one WAL flush),
     * each fenced by its own token. Keys are distinct within a call.
     * $1 keys, $2 tokens, $3 results (bytea[]), $4 now ms, $5 new retention ends (bigint[]), one
     * element per record. Returns the key and token of each record completed; a record whose token
     * no longer holds returns no row.
     */
    completeMany: `
      UPDATE ${table} AS r
      SET state = 'completed', result = b.result, updated_at_ms = b.now_ms, expires_at_ms = b.expires_at_ms
      FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[], $5::bigint[])
        AS b(key, token, result, now_ms, expires_at_ms)
      WHERE r.key = b.key AND r.token = b.token AND r.state = 'in_progress'
      RETURNING r.key, r.token`,

    /*
     * release: deletes an in-progress record, if the token still holds; the journal's foreign
     * key deletes its entries in the same statement (ON DELETE CASCADE).
     * $1 key, $2 token. Returns the row count: 1 when deleted, 0 otherwise.
     */
    release: `DELETE FROM ${table} WHERE key = $1 AND token = $2 AND state = 'in_progress'`,

    /*
     * extend: moves the lease end of an in-progress record and raises its retention end (never
     * lowers it), if the token still holds (the rule of `extendedRecord`).
     * $1 key, $2 token, $3 now ms, $4 new lease end ms, $5 least retention end ms.
     * Returns the row count: 1 or 0.
     */
    extend: `
      UPDATE ${table}
      SET lease_expires_at_ms = $4, expires_at_ms = GREATEST(expires_at_ms, $5::bigint), updated_at_ms = $3
      WHERE key = $1 AND token = $2 AND state = 'in_progress'`,

    /*
     * remove: deletes a record whatever its state, and its journal entries with it (cascade).
     * $1 key. Returns the row count: 1 when there was one, 0 otherwise.
     */
    remove: `DELETE FROM ${table} WHERE key = $1`,

    /*
     * list: one page of records in key order (byte order: the key column is COLLATE "C").
     * $1 cursor (last key of the previous page) or NULL, $2 state or NULL, $3 now ms or NULL
     * (leaves out expired records), $4 page size. Returns up to $4 rows; ask for one more than
     * the page holds to know whether a next page exists.
     */
    list: `
      SELECT ${columns} FROM ${table}
      WHERE ($1::text IS NULL OR key > $1)
        AND ($2::text IS NULL OR state = $2)
        AND ($3::bigint IS NULL OR expires_at_ms > $3)
      ORDER BY key
      LIMIT $4`,

    /*
     * sweep: deletes up to $2 expired records, oldest first. Rows another session has locked
     * (a claim replacing them right now) are skipped, and the outer `expires_at_ms <= $1` is
     * checked again on the row version the DELETE sees, so a record a concurrent claim has just
     * renewed is never swept. The journal's foreign key deletes the swept records' entries.
     * $1 now ms, $2 limit. Returns the row count: how many were deleted.
     */
    sweep: `
      DELETE FROM ${table}
      WHERE key IN (
        SELECT key FROM ${table}
        WHERE expires_at_ms <= $1
        ORDER BY expires_at_ms
        LIMIT $2
        FOR UPDATE SKIP LOCKED
      )
      AND expires_at_ms <= $1`,
  };
}
