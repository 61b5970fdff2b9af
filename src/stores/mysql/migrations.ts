/**
 * The tables the MySQL / MariaDB store keeps its records and journals in. The migration is two
 * idempotent statements, so it can run at every start, from every process at once.
 */

/** The journal table of the records table `table`. */
export function journalTable(table: string): string {
  return `${table}_journal`;
}

/*
 * exists: the fast path, with no DDL, so a user without the CREATE privilege can use tables an
 * operator created beforehand (MySQL checks that privilege even for CREATE TABLE IF NOT EXISTS).
 * :table the bare records table name, :journal the bare journal table name, looked up in the
 * connection's current database.
 * Returns one row per table that exists: two when both do.
 */
export const existsSql = `
  SELECT TABLE_NAME FROM information_schema.TABLES
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (:table, :journal)`;

/*
 * migrate: creates the records table with its expiry index if it is missing. No GET_LOCK is
 * needed: the server takes an exclusive metadata lock on the table name, so of many processes
 * running this at once one creates the table and the others find it there (a note, not an
 * error). The index is part of the same statement, so no process can see the table without it.
 * Keys, tokens and fingerprints are VARBINARY: compared byte for byte, so `abc` and `ABC` are two
 * keys whatever the server's default collation. Times are BIGINT milliseconds.
 * No parameters: `table` is a validated identifier, quoted here.
 * Returns nothing.
 */
export function migrateSql(table: string): string {
  return `
    CREATE TABLE IF NOT EXISTS \`${table}\` (
      idem_key VARBINARY(255) NOT NULL,
      fingerprint VARBINARY(255) NOT NULL,
      state VARCHAR(11) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
        CHECK (state IN ('in_progress', 'completed')),
      token VARBINARY(255) NOT NULL,
      lease_expires_at_ms BIGINT NOT NULL,
      expires_at_ms BIGINT NOT NULL,
      result LONGBLOB NULL,
      created_at_ms BIGINT NOT NULL,
      updated_at_ms BIGINT NOT NULL,
      attempts INT UNSIGNED NOT NULL,
      PRIMARY KEY (idem_key),
      KEY expires_at_ms_idx (expires_at_ms)
    ) ENGINE = InnoDB`;
}

/*
 * migrateJournal: creates the journal table if it is missing, after the records table (its
 * foreign key needs it); safe from many processes at once, as `migrateSql` is.
 * The foreign key deletes a record's entries with it, in the same statement: release, delete
 * and sweep stay one statement each, and `sweep` still reports the records it deleted (cascaded
 * rows are not counted). It also keeps an entry from outliving a record deleted while the entry
 * was being appended: the append holds a share lock on the record until it commits. The
 * constraint is named (`<table>_jfk`, unique in the database as MySQL requires) because the
 * generated name (`<table>_journal_ibfk_1`) could pass 64 characters.
 * No parameters: `table` is a validated identifier, quoted here.
 * Returns nothing.
 */
export function migrateJournalSql(table: string): string {
  return `
    CREATE TABLE IF NOT EXISTS \`${journalTable(table)}\` (
      idem_key VARBINARY(255) NOT NULL,
      seq BIGINT UNSIGNED NOT NULL,
      data LONGBLOB NOT NULL,
      at_ms BIGINT NOT NULL,
      PRIMARY KEY (idem_key, seq),
      CONSTRAINT \`${table}_jfk\` FOREIGN KEY (idem_key) REFERENCES \`${table}\` (idem_key) ON DELETE CASCADE
    ) ENGINE = InnoDB`;
}

/** The longest key, token or fingerprint the table holds, in UTF-8 bytes. */
export const MAX_TEXT_BYTES = 255;
