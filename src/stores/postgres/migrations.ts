import { hashText } from '../../core/canonical.js';

/**
 * The tables the PostgreSQL store keeps its records and journals in. Every step is idempotent
 * (`IF NOT EXISTS`), so the migration can run at every start, from every process at once.
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
  /** The quoted, possibly schema-qualified name of the journal table: `"app"."idem_records_journal"`. */
  journal: string;
  /** The quoted, possibly schema-qualified name of the journal's index of runs (its entries 0). */
  runsIndex: string;
  /** The quoted runs index name alone, for CREATE INDEX. */
  runsIndexName: string;
  /** `schema.table` unquoted, to name the advisory lock. */
  lockName: string;
  /** A short hash of `schema.table`, to name the prepared statements of this table. */
  hash: string;
}

/** Names for `table` in `schema` (or the search path); both must already be validated identifiers. */
export function tableNames(table: string, schema: string | undefined): PostgresTableNames {
  const prefix = schema === undefined ? '' : `"${schema}".`;
  const indexName = `"${table}_expires_idx"`;
  const runsIndexName = `"${table}_runs_idx"`;
  return {
    table: `${prefix}"${table}"`,
    expiresIndex: `${prefix}${indexName}`,
    expiresIndexName: indexName,
    journal: `${prefix}"${table}_journal"`,
    runsIndex: `${prefix}${runsIndexName}`,
    runsIndexName,
    lockName: schema === undefined ? table : `${schema}.${table}`,
    hash: hashText(`${schema ?? ''}.${table}`)
      .slice(0, 12)
      .replace(/[^A-Za-z0-9]/g, '_'),
  };
}

/*
 * exists: the fast path, with no lock and no DDL, so a role without CREATE privilege can use
 * tables an operator created beforehand.
 * $1 quoted table name, $2 quoted expiry index name, $3 quoted journal table name, $4 quoted runs
 * index name (as `PostgresTableNames`: quoted, so case is kept).
 * Returns one row: `ready` true when all four exist.
 */
export const existsSql = `
  SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL
     AND to_regclass($3) IS NOT NULL AND to_regclass($4) IS NOT NULL AS ready`;

/*
 * migrate: creates the records table, its expiry index, the journal table and its runs index if
 * they are missing. Sent as one simple-protocol query, which PostgreSQL runs as one implicit
 * transaction, so the advisory lock is held until all are created. Without the lock, two
 * processes running CREATE TABLE IF NOT EXISTS at the same moment can both pass the existence
 * check and one fails on pg_type's unique index.
 * The journal's foreign key deletes a record's entries with it (release, delete, sweep) inside
 * the same statement. A CTE that deleted them instead would miss an entry appended while the
 * DELETE waited on the record's row lock: every part of a statement reads one snapshot, taken
 * before that append committed. The cascade runs after the record is gone, on a fresh snapshot.
 * The runs index holds only entries 0, so `runs` walks the runs in key order without reading
 * every entry or every record.
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
    CREATE INDEX IF NOT EXISTS ${names.expiresIndexName} ON ${names.table} (expires_at_ms);
    CREATE TABLE IF NOT EXISTS ${names.journal} (
      key TEXT COLLATE "C" NOT NULL REFERENCES ${names.table} (key) ON DELETE CASCADE,
      seq BIGINT NOT NULL CHECK (seq >= 0),
      data BYTEA NOT NULL,
      at_ms BIGINT NOT NULL,
      PRIMARY KEY (key, seq)
    );
    CREATE INDEX IF NOT EXISTS ${names.runsIndexName} ON ${names.journal} (key) WHERE seq = 0;`;
}
