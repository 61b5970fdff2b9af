/**
 * The statements of `sqliteOutbox`. The table name is a validated identifier, quoted here; every
 * value is a `?` placeholder. SQLite has no row locks: a relay pass leases its messages instead
 * (`locked_by`, `locked_until_ms`), in short write transactions, and publishes between them.
 */

/** The columns a relay reads, in `PendingRow` order. */
const PENDING_COLUMNS = 'o.seq, o.id, o.topic, o.key, o.payload, o.headers, o.attempts, o.created_at_ms';

export function sqliteOutboxStatements(table: string) {
  const t = `"${table}"`;
  const index = (suffix: string) => `"${table}_${suffix}"`;
  return {
    /*
     * schema: the table and its indexes, if missing. Partial indexes: the due scan walks pending
     * rows in enqueue order; the key index finds a key's oldest pending; the lease index finds a
     * pass's rows; cleanup walks published rows by publish time; dead() lists dead ones.
     * No parameters. Returns nothing.
     */
    schema: `
      CREATE TABLE IF NOT EXISTS ${t} (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        topic TEXT NOT NULL,
        key TEXT,
        payload BLOB NOT NULL,
        headers TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'published', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at_ms INTEGER NOT NULL,
        last_error TEXT,
        created_at_ms INTEGER NOT NULL,
        published_at_ms INTEGER,
        locked_by TEXT,
        locked_until_ms INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX IF NOT EXISTS ${index('due_idx')} ON ${t} (seq, next_attempt_at_ms) WHERE state = 'pending';
      CREATE INDEX IF NOT EXISTS ${index('key_idx')} ON ${t} (key, seq) WHERE state = 'pending' AND key IS NOT NULL;
      CREATE INDEX IF NOT EXISTS ${index('lease_idx')} ON ${t} (locked_by) WHERE locked_by IS NOT NULL;
      CREATE INDEX IF NOT EXISTS ${index('published_idx')} ON ${t} (published_at_ms) WHERE state = 'published';
      CREATE INDEX IF NOT EXISTS ${index('dead_idx')} ON ${t} (seq) WHERE state = 'dead';`,

    /*
     * enqueue: the message, in the caller's transaction; an id already there is left as it is.
     * ?1 id, ?2 topic, ?3 key, ?4 payload, ?5 headers (JSON), ?6 next attempt (ms), ?7 now (ms).
     * Returns changes: 1, or 0 for an id already there.
     */
    enqueue: `INSERT INTO ${t} (id, topic, key, payload, headers, next_attempt_at_ms, created_at_ms)
      VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,

    /*
     * due: up to ?3 pending messages due by ?1 whose lease (if any) ended by ?2, oldest first. A
     * keyed message is taken only when it is its key's oldest pending one, leased or not: while a
     * pass holds a key's first message, neither it nor the second is taken.
     * ?1 now (ms, the pass's), ?2 now (ms, this machine's clock), ?3 limit. Returns the rows.
     */
    due: `SELECT ${PENDING_COLUMNS} FROM ${t} o
      WHERE o.state = 'pending' AND o.next_attempt_at_ms <= ? AND o.locked_until_ms <= ?
        AND (o.key IS NULL OR o.seq = (
          SELECT min(p.seq) FROM ${t} p WHERE p.key = o.key AND p.state = 'pending'))
      ORDER BY o.seq
      LIMIT ?`,

    /*
     * lease: one message, leased to a pass.
     * ?1 lease token, ?2 lease end (ms), ?3 seq. Returns changes.
     */
    lease: `UPDATE ${t} SET locked_by = ?, locked_until_ms = ? WHERE seq = ?`,

    /*
     * extend: the pass's leases, extended while it publishes.
     * ?1 lease end (ms), ?2 lease token. Returns changes.
     */
    extend: `UPDATE ${t} SET locked_until_ms = ? WHERE locked_by = ?`,

    /*
     * unlease: the pass's leases, given up (its publish threw): due again at once.
     * ?1 lease token. Returns changes.
     */
    unlease: `UPDATE ${t} SET locked_by = NULL, locked_until_ms = 0 WHERE locked_by = ?`,

    /*
     * markPublished: one published message, if the pass still holds it.
     * ?1 now (ms), ?2 seq, ?3 lease token. Returns changes: 1, or 0 when the lease was lost.
     */
    markPublished: `UPDATE ${t} SET state = 'published', published_at_ms = ?, locked_by = NULL, locked_until_ms = 0
      WHERE seq = ? AND locked_by = ?`,

    /*
     * markFailed: one failed message, if the pass still holds it: pending at its next attempt, or
     * dead when that is NULL.
     * ?1 state, ?2 attempts, ?3 next attempt (ms, or NULL: unchanged), ?4 error, ?5 seq, ?6 lease
     * token. Returns changes.
     */
    markFailed: `UPDATE ${t} SET state = ?, attempts = ?, next_attempt_at_ms = COALESCE(?, next_attempt_at_ms),
      last_error = ?, locked_by = NULL, locked_until_ms = 0 WHERE seq = ? AND locked_by = ?`,

    /*
     * counts: messages in each state, each on its partial index.
     * No parameters. Returns one row: pending, published, dead.
     */
    counts: `SELECT
      (SELECT count(*) FROM ${t} WHERE state = 'pending') AS pending,
      (SELECT count(*) FROM ${t} WHERE state = 'published') AS published,
      (SELECT count(*) FROM ${t} WHERE state = 'dead') AS dead`,

    /*
     * dead: dead messages, oldest first.
     * ?1 limit. Returns the rows in `PendingRow` order, then last_error.
     */
    dead: `SELECT ${PENDING_COLUMNS}, o.last_error FROM ${t} o WHERE o.state = 'dead' ORDER BY o.seq LIMIT ?`,

    /*
     * revive: a dead message pending again, due at once, its attempts reset.
     * ?1 id. Returns changes: 1 when it was dead.
     */
    revive: `UPDATE ${t} SET state = 'pending', attempts = 0, next_attempt_at_ms = 0, last_error = NULL
      WHERE id = ? AND state = 'dead'`,

    /*
     * cleanup: deletes up to ?2 messages published before ?1, oldest first.
     * ?1 before (ms), ?2 limit. Returns changes.
     */
    cleanup: `DELETE FROM ${t} WHERE seq IN (
      SELECT seq FROM ${t} WHERE state = 'published' AND published_at_ms < ? ORDER BY published_at_ms LIMIT ?)`,
  };
}

export type SqliteOutboxStatements = ReturnType<typeof sqliteOutboxStatements>;
