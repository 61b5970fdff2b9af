/**
 * The journal statements of the MySQL / MariaDB store (see `JournalStore`). `table` is the
 * validated records table name; the journal is `<table>_journal`. Everything else is a named
 * parameter, keys and tokens bound as bytes.
 *
 * The fence. Every write to a journal first takes a share lock on the run's record (`LOCK IN
 * SHARE MODE`, which MariaDB and MySQL 8 both accept), and a locking read sees the latest
 * committed row, not the transaction's snapshot, whatever the isolation level:
 *   A (old holder): append asks for a share lock on the record
 *   B (takeover):   claim holds the record's exclusive lock to write token B; A waits
 *   B: commits     -> A reads the row B wrote, token B no longer matches: nothing is inserted.
 * Had A locked first, B's claim (or a complete, or a release) waits until A's entry is
 * committed. Without the lock, under READ COMMITTED, A would read the record from before B's
 * commit and its entry would land after B took over.
 */
import { journalTable } from './migrations.js';

/** The run's record, when it is in progress with :token and live at :nowMs. */
const fence = `idem_key = :key AND token = :token AND state = 'in_progress' AND expires_at_ms > :nowMs`;

export type MysqlJournalStatements = ReturnType<typeof mysqlJournalStatements>;

export function mysqlJournalStatements(table: string) {
  const t = `\`${table}\``;
  const j = `\`${journalTable(table)}\``;
  return {
    /*
     * append: writes entry :seq (1 and up) if the record is in progress with :token and live,
     * and the seq is free (IGNORE: a taken seq inserts nothing), in one statement that holds a
     * share lock on the record until it commits.
     * :key, :token, :seq, :data (bytes), :nowMs.
     * Returns affected rows: 1 when written, 0 when the fence failed or the seq was taken.
     */
    append: `
      INSERT IGNORE INTO ${j} (idem_key, seq, data, at_ms)
      SELECT idem_key, :seq, :data, :nowMs FROM ${t}
      WHERE ${fence}
      LOCK IN SHARE MODE`,

    /*
     * holder: the first statement of the transaction that starts a journal afresh: locks the
     * record (share) if it is in progress with :token and live, so the fence holds until COMMIT.
     * :key, :token, :nowMs.
     * Returns one row when the fence holds, none otherwise.
     */
    holder: `SELECT 1 AS held FROM ${t} WHERE ${fence} LOCK IN SHARE MODE`,

    /*
     * clear: deletes every entry of a key; in the transactions of a new journal and of reopen,
     * after the record is locked (the order a cascade takes locks in too, so the two do not
     * deadlock).
     * :key.
     * Returns affected rows: how many entries were deleted.
     */
    clear: `DELETE FROM ${j} WHERE idem_key = :key`,

    /*
     * insertFirst: writes entry 0, in the transaction of a new journal once `holder` held and
     * `clear` emptied it.
     * :key, :data (bytes), :nowMs.
     * Returns affected rows: 1.
     */
    insertFirst: `INSERT INTO ${j} (idem_key, seq, data, at_ms) VALUES (:key, 0, :data, :nowMs)`,

    /*
     * reopen: the first statement of the reopen transaction: makes a completed, live record that
     * holds :expectedToken in progress again with :token, a fresh lease and retention (result
     * NULL, attempts + 1, created and fingerprint kept); its exclusive lock holds until COMMIT,
     * after `clear` removed the journal.
     * :key, :expectedToken, :token, :nowMs, :leaseExpiresAtMs, :expiresAtMs (ms since epoch).
     * Returns affected rows (and `Rows matched` in the info line): 1 when reopened, 0 otherwise.
     */
    reopen: `
      UPDATE ${t}
      SET state = 'in_progress', token = :token, lease_expires_at_ms = :leaseExpiresAtMs,
        expires_at_ms = :expiresAtMs, result = NULL, attempts = attempts + 1, updated_at_ms = :nowMs
      WHERE idem_key = :key AND token = :expectedToken AND state = 'completed' AND expires_at_ms > :nowMs`,

    /*
     * entries: every entry of a key, in seq order.
     * :key.
     * Returns rows of `seq`, `data`, `at_ms`.
     */
    entries: `SELECT seq, data, at_ms FROM ${j} WHERE idem_key = :key ORDER BY seq`,

    /*
     * runs: one page of the keys that have an entry 0 and a record, in key (byte) order, walking
     * the journal's primary key. With :dueBy, only records in progress whose lease ended by then
     * and whose retention has not. NULL parameters drop their filter.
     * :cursor (the last key of the previous page, or NULL), :dueBy (ms since epoch, or NULL),
     * :limit (the page size plus one, to learn whether another page follows).
     * Returns up to :limit rows of `idem_key`.
     */
    runs: `
      SELECT j.idem_key FROM ${j} j JOIN ${t} r ON r.idem_key = j.idem_key
      WHERE j.seq = 0
        AND (:cursor IS NULL OR j.idem_key > :cursor)
        AND (:dueBy IS NULL
          OR (r.state = 'in_progress' AND r.lease_expires_at_ms <= :dueBy AND r.expires_at_ms > :dueBy))
      ORDER BY j.idem_key
      LIMIT :limit`,
  };
}
