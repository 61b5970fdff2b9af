/**
 * The statements of `mysqlOutbox` (MySQL 8, MariaDB 10.6+, InnoDB). The table name is a validated
 * identifier, quoted here; every value is a `?` placeholder. Text is bound as its UTF-8 bytes
 * into VARBINARY and BLOB columns, so what is stored does not depend on the connection's
 * character set.
 */

export interface MysqlOutboxStatements {
  find: string;
  create: string;
  enqueue: string;
  beginPass: string[];
  claim: string;
  markPublished: string;
  markFailed: string;
  counts: string;
  dead: string;
  revive: string;
  cleanup: string;
}

/** The columns a relay reads, in `PendingRow` order. */
const PENDING_COLUMNS = 'o.seq, o.id, o.topic, o.`key`, o.payload, o.headers, o.attempts, o.created_at_ms';

export function mysqlOutboxStatements(table: string): MysqlOutboxStatements {
  const t = `\`${table}\``;
  return {
    /*
     * find: the table, with no DDL, so a user without CREATE can use one an operator created.
     * ? the bare table name, in the connection's database. Returns one row if it exists.
     */
    find: 'SELECT 1 AS present FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',

    /*
     * create: the table and its indexes. The server's metadata lock on the name makes concurrent
     * creations safe. 765 bytes hold 255 UTF-16 code units of UTF-8. due_idx walks pending rows in
     * enqueue order; key_idx finds a key's oldest pending; published_idx serves cleanup and counts.
     * No parameters. Returns nothing.
     */
    create: `CREATE TABLE IF NOT EXISTS ${t} (
      seq BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
      id VARBINARY(765) NOT NULL,
      topic VARBINARY(765) NOT NULL,
      \`key\` VARBINARY(765) NULL,
      payload LONGBLOB NOT NULL,
      headers BLOB NOT NULL,
      state ENUM('pending', 'published', 'dead') NOT NULL DEFAULT 'pending',
      attempts INT NOT NULL DEFAULT 0,
      next_attempt_at_ms BIGINT NOT NULL,
      last_error BLOB NULL,
      created_at_ms BIGINT NOT NULL,
      published_at_ms BIGINT NULL,
      UNIQUE KEY id_idx (id),
      KEY due_idx (state, seq, next_attempt_at_ms),
      KEY key_idx (\`key\`, state, seq),
      KEY published_idx (state, published_at_ms)
    ) ENGINE = InnoDB`,

    /*
     * enqueue: the message, in the caller's transaction; an id already there is left as it is
     * (the no-op assignment, unlike INSERT IGNORE, lets every other error through).
     * ? id, ? topic, ? key, ? payload, ? headers, ? next attempt (ms), ? now (ms). Returns the change.
     */
    enqueue: `INSERT INTO ${t} (id, topic, \`key\`, payload, headers, next_attempt_at_ms, created_at_ms)
      VALUES (?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE id = id`,

    /*
     * beginPass: READ COMMITTED for this one transaction, so the pass's locking read takes no gap
     * locks: the caller's enqueues go on inserting while a pass publishes.
     * No parameters. Returns nothing.
     */
    beginPass: ['SET TRANSACTION ISOLATION LEVEL READ COMMITTED', 'START TRANSACTION'],

    /*
     * claim: locks up to ? pending messages due by ?, oldest first, skipping those another pass
     * holds. A keyed message is taken only when it is its key's oldest pending one; the subquery is
     * a non-locking read, so it does not skip locked rows: while another pass holds a key's first
     * message, neither it nor the second is taken.
     * ? now (ms), ? limit. Returns the rows, in `PendingRow` order.
     */
    claim: `SELECT ${PENDING_COLUMNS} FROM ${t} o
      WHERE o.state = 'pending' AND o.next_attempt_at_ms <= ?
        AND (o.\`key\` IS NULL OR o.seq = (
          SELECT min(p.seq) FROM ${t} p WHERE p.\`key\` = o.\`key\` AND p.state = 'pending'))
      ORDER BY o.seq
      LIMIT ?
      FOR UPDATE SKIP LOCKED`,

    /*
     * markPublished: the pass's published messages.
     * ? now (ms), ? the seqs (a list). Returns the change.
     */
    markPublished: `UPDATE ${t} SET state = 'published', published_at_ms = ? WHERE seq IN (?)`,

    /*
     * markFailed: one failed message: pending at its next attempt, or dead when that is NULL.
     * ? state, ? attempts, ? next attempt (ms, or NULL: unchanged), ? error, ? seq. Returns the change.
     */
    markFailed: `UPDATE ${t} SET state = ?, attempts = ?, next_attempt_at_ms = COALESCE(?, next_attempt_at_ms),
      last_error = ? WHERE seq = ?`,

    /*
     * counts: messages in each state, on published_idx (state first).
     * No parameters. Returns a row per state that has messages: state, n.
     */
    counts: `SELECT state, COUNT(*) AS n FROM ${t} GROUP BY state`,

    /*
     * dead: dead messages, oldest first.
     * ? limit. Returns the rows in `PendingRow` order, then last_error.
     */
    dead: `SELECT ${PENDING_COLUMNS}, o.last_error FROM ${t} o WHERE o.state = 'dead' ORDER BY o.seq LIMIT ?`,

    /*
     * revive: a dead message pending again, due at once, its attempts reset.
     * ? id. Returns the change: affectedRows 1 when it was dead.
     */
    revive: `UPDATE ${t} SET state = 'pending', attempts = 0, next_attempt_at_ms = 0, last_error = NULL
      WHERE id = ? AND state = 'dead'`,

    /*
     * cleanup: deletes up to ? messages published before ?, oldest first (the seq in the ORDER BY
     * makes statement-based replicas delete the same rows).
     * ? before (ms), ? limit. Returns the change: affectedRows.
     */
    cleanup: `DELETE FROM ${t} WHERE state = 'published' AND published_at_ms < ?
      ORDER BY published_at_ms, seq LIMIT ?`,
  };
}
