/**
 * The SQLite store's schema. Every statement is idempotent (`IF NOT EXISTS`), and the store runs
 * them together in one IMMEDIATE transaction: SQLite's write lock is the lock that keeps many
 * processes opening one file at once from stepping on each other, so no advisory lock is needed.
 * Add new steps at the end; never edit one that has shipped.
 */
export function migrationStatements(table: string): string[] {
  return [
    /**
     * Creates the records table. `key` is the primary key (the claim's point of contention);
     * times are ms since the epoch; `result` holds the engine's encoded outcome, NULL while
     * in progress.
     * No parameters. Returns nothing.
     */
    `CREATE TABLE IF NOT EXISTS ${table} (
  key TEXT NOT NULL PRIMARY KEY,
  fingerprint TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
  token TEXT NOT NULL,
  lease_expires_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  result BLOB,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL
)`,
    /**
     * Indexes the retention end, so `sweep` finds expired records without a full scan.
     * No parameters. Returns nothing.
     */
    `CREATE INDEX IF NOT EXISTS ${table}_expires_at_ms ON ${table} (expires_at_ms)`,
    /**
     * Creates the journal table beside the records: a run's entries, one row per (key, seq).
     * `data` holds the engine's encoded entry, `at_ms` the time of its append (ms since the
     * epoch). WITHOUT ROWID keeps the rows in primary-key order, so a run's entries are one
     * range, read in seq order, with no second lookup per entry (entries are mostly small step
     * results; a large one goes to overflow pages as it would in a rowid table).
     * No parameters. Returns nothing.
     */
    `CREATE TABLE IF NOT EXISTS ${table}_journal (
  key TEXT NOT NULL,
  seq INTEGER NOT NULL,
  data BLOB NOT NULL,
  at_ms INTEGER NOT NULL,
  PRIMARY KEY (key, seq)
) WITHOUT ROWID`,
    /**
     * Indexes the keys that have an entry 0 (the runs), so `runs` pages through them without
     * reading every entry or every record.
     * No parameters. Returns nothing.
     */
    `CREATE INDEX IF NOT EXISTS ${table}_journal_runs ON ${table}_journal (key) WHERE seq = 0`,
    /**
     * Deletes a record's journal with the record, in the same statement, whatever deletes it
     * (release, delete, sweep): entries live and die with their record, and the record
     * statements stay as they are. A claim's upsert fires no DELETE trigger.
     * No parameters. Returns nothing.
     */
    `CREATE TRIGGER IF NOT EXISTS ${table}_journal_cleanup AFTER DELETE ON ${table}
BEGIN
  DELETE FROM ${table}_journal WHERE key = old.key;
END`,
  ];
}
