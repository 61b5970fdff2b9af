/**
 * The journal statements of the PostgreSQL store (see `JournalStore`). `names` are the quoted,
 * validated table names; everything else is a bind parameter. `seq` and times are BIGINT (back
 * as strings), `data` BYTEA (back as a Buffer).
 *
 * The fence. An append locks the run's record FOR SHARE in the statement that writes the entry,
 * and the lock's re-check is what keeps a stale holder out:
 *   A (old holder): append reads the record with token A in its snapshot, asks FOR SHARE
 *   B (takeover):   claim has already locked the record to write token B; A's lock waits
 *   B: commits     -> A's lock re-reads the row version B wrote (READ COMMITTED), token B no
 *                     longer matches, the holder CTE is empty, nothing is inserted: false.
 * Had A locked first, B's claim (or a complete) waits until A's entry is committed: the entry
 * belongs to A's lease, before the takeover. Without the lock A's snapshot would still show
 * token A and the entry would land after B took over. FOR KEY SHARE would not do: it does not
 * conflict with an UPDATE that leaves the key alone, which every claim and complete is. A
 * record's DELETE (release, delete, sweep) conflicts with the lock too, and the journal's foreign
 * key then removes the entry with the record (see `migrateSql`).
 */
import type { PostgresTableNames } from './migrations.js';

export type PostgresJournalStatements = ReturnType<typeof postgresJournalStatements>;

export function postgresJournalStatements(names: PostgresTableNames) {
  const { table, journal } = names;
  /** The run's record, locked, when `$1` is in progress with token `$2` and live at `now`. */
  const holder = (nowParam: string) => `
    holder AS (
      SELECT key FROM ${table}
      WHERE key = $1::text AND token = $2::text AND state = 'in_progress' AND expires_at_ms > ${nowParam}::bigint
      FOR SHARE
    )`;
  return {
    /*
     * append: writes entry `seq` (1 and up) if the record holds the token, is in progress and
     * live, and the seq is free; the record is locked FOR SHARE meanwhile (see the fence above).
     * $1 key, $2 token, $3 seq, $4 data bytes, $5 now ms.
     * Returns the row count: 1 when written, 0 when the fence failed or the seq was taken.
     */
    append: `
      WITH ${holder('$5')}
      INSERT INTO ${journal} (key, seq, data, at_ms)
      SELECT key, $3::bigint, $4::bytea, $5::bigint FROM holder
      ON CONFLICT (key, seq) DO NOTHING`,

    /*
     * appendFirst: starts the journal afresh with entry 0, under the same fence as `append`:
     * removes the key's other entries (left from an earlier run) and writes entry 0 over any
     * earlier one, in one statement. The DELETE sees the snapshot only, which is enough: the
     * entries it must remove are old, and a stale holder cannot add one (it is fenced).
     * $1 key, $2 token, $3 data bytes, $4 now ms.
     * Returns the row count: 1 when written, 0 when the fence failed.
     */
    appendFirst: `
      WITH ${holder('$4')},
      cleared AS (
        DELETE FROM ${journal} j USING holder h WHERE j.key = h.key AND j.seq > 0
      )
      INSERT INTO ${journal} (key, seq, data, at_ms)
      SELECT key, 0, $3::bytea, $4::bigint FROM holder
      ON CONFLICT (key, seq) DO UPDATE SET data = EXCLUDED.data, at_ms = EXCLUDED.at_ms`,

    /*
     * entries: every entry of a key, in seq order.
     * $1 key. Returns rows of `seq`, `data`, `at_ms`.
     */
    entries: `SELECT seq, data, at_ms FROM ${journal} WHERE key = $1::text ORDER BY seq`,

    /*
     * reopen: makes a completed, live record that holds $2 in progress again with token $3 and
     * a fresh lease and retention (result NULL, attempts + 1, created and fingerprint kept), and
     * deletes its journal, in one statement. The snapshot holds every entry of the record: they
     * were all appended under its lease, and `complete` waited for each append's lock.
     * $1 key, $2 expected token, $3 new token, $4 now ms, $5 lease end ms, $6 retention end ms.
     * Returns the row count: 1 when reopened, 0 when the record is not completed with $2 and live.
     */
    reopen: `
      WITH reopened AS (
        UPDATE ${table}
        SET state = 'in_progress', token = $3::text, lease_expires_at_ms = $5::bigint,
          expires_at_ms = $6::bigint, result = NULL, attempts = attempts + 1, updated_at_ms = $4::bigint
        WHERE key = $1::text AND token = $2::text AND state = 'completed' AND expires_at_ms > $4::bigint
        RETURNING key
      ), cleared AS (
        DELETE FROM ${journal} WHERE key IN (SELECT key FROM reopened)
      )
      SELECT key FROM reopened`,

    /*
     * runs: one page of the keys that have an entry 0 and a record, in key order (byte order:
     * both key columns are COLLATE "C"), through the runs index. With a due time, only records
     * in progress whose lease ended by then and whose retention has not.
     * $1 cursor (last key of the previous page) or NULL, $2 due-by ms or NULL, $3 page size.
     * Returns up to $3 rows of `key`; ask for one more than the page holds to know whether a
     * next page exists.
     */
    runs: `
      SELECT j.key FROM ${journal} j JOIN ${table} r ON r.key = j.key
      WHERE j.seq = 0
        AND ($1::text IS NULL OR j.key > $1)
        AND ($2::bigint IS NULL
          OR (r.state = 'in_progress' AND r.lease_expires_at_ms <= $2 AND r.expires_at_ms > $2))
      ORDER BY j.key
      LIMIT $3`,
  };
}
