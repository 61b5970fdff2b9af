import { hashText } from '../../core/canonical.js';

/**
 * The table the PostgreSQL store keeps its records in. Every step is idempotent (`IF NOT
 * EXISTS`), so the migration can run at every start, from every process at once.
 */

/** Classid of Idem's advisory locks: the bytes of `idem` as an int4. */
const ADVISORY_LOCK_CLASS = 0x6964656d;

export interface PostgresTableNames {
  /** The quoted, possibly schema-qualified table name: `"app"."idem_records"`. */
  table: string;
  /** The quoted, possibly schema-qualified name of the index on `expires_at_ms`. */
  expiresIndex: string;
  /** The quoted index name alone, for CREATE INDEX (which takes no schema). */
  expiresIndexName: string;
  /** `schema.table` unquoted, to name the advisory lock. */
  lockName: string;
  /** A short hash of `schema.table`, to name the prepared statements of this table. */
  hash: string;
}

/** Names for `table` in `schema` (or the search path); both must already be validated identifiers. */
export function tableNames(table: string, schema: string | undefined): PostgresTableNames {
  const prefix = schema === undefined ? '' : `"${schema}".`;
  const indexName = `"${table}_expires_idx"`;
  return {
    table: `${prefix}"${table}"`,
    expiresIndex: `${prefix}${indexName}`,
    expiresIndexName: indexName,
    lockName: schema === undefined ? table : `${schema}.${table}`,
    hash: hashText(`${schema ?? ''}.${table}`)
      .slice(0, 12)
      .replace(/[^A-Za-z0-9]/g, '_'),
  };
}

/*
 * exists: the fast path, with no lock and no DDL, so a role without CREATE privilege can use a
 * table an operator created beforehand.
 * $1 quoted table name, $2 quoted index name (as `PostgresTableNames`: quoted, so case is kept).
 * Returns one row: `ready` true when both the table and its expiry index exist.
 */
export const existsSql = `SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AS ready`;

/*
 * migrate: creates the table and its expiry index if they are missing. Sent as one simple-protocol
 * query, which PostgreSQL runs as one implicit transaction, so the advisory lock is held until
 * both are created. Without the lock, two processes running CREATE TABLE IF NOT EXISTS at the
 * same moment can both pass the existence check and one fails on pg_type's unique index.
 * No parameters (the simple protocol takes none): names are validated identifiers, quoted.
 * Returns nothing.
 */
export function migrateSql(names: PostgresTableNames): string {
  return `
    SELECT pg_advisory_xact_lock(${ADVISORY_LOCK_CLASS}, hashtext('idem:${names.lockName}'));
    CREATE TABLE IF NOT EXISTS ${names.table} (
      key TEXT COLLATE "C" PRIMARY KEY,
      fingerprint TEXT NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
      token TEXT NOT NULL,
      lease_expires_at_ms BIGINT NOT NULL,
      expires_at_ms BIGINT NOT NULL,
      result BYTEA,
      created_at_ms BIGINT NOT NULL,
      updated_at_ms BIGINT NOT NULL,
      attempts INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS ${names.expiresIndexName} ON ${names.table} (expires_at_ms);`;
}
