/**
 * The table the MySQL / MariaDB store keeps its records in. The migration is one idempotent
 * statement, so it can run at every start, from every process at once.
 */

/*
 * exists: the fast path, with no DDL, so a user without the CREATE privilege can use a table an
 * operator created beforehand (MySQL checks that privilege even for CREATE TABLE IF NOT EXISTS).
 * :table the bare table name, looked up in the connection's current database.
 * Returns one row when the table exists, none otherwise.
 */
export const existsSql = `
  SELECT 1 AS present FROM information_schema.TABLES
  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :table`;

/*
 * migrate: creates the table with its expiry index if it is missing. No GET_LOCK is needed:
 * the server takes an exclusive metadata lock on the table name, so of many processes running
 * this at once one creates the table and the others find it there (a note, not an error). The
 * index is part of the same statement, so no process can see the table without it.
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

/** The longest key, token or fingerprint the table holds, in UTF-8 bytes. */
export const MAX_TEXT_BYTES = 255;
