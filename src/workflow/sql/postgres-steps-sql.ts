/**
 * The statements of `postgresSteps`: its table, its transaction and its reads. Names are
 * validated identifiers, quoted here; every value is a parameter, except the lock key, a number.
 */
import { createHash } from 'node:crypto';
import { hashText } from '../../core/canonical.js';
import type { StepRef } from './step-database.js';

/** Classid of the migration's advisory lock: the bytes of `idem` as an int4, as the PostgreSQL store's. */
const MIGRATION_LOCK_CLASS = 0x6964656d;
/** Classid of the step locks: the bytes of `idst` as an int4, apart from every other lock of Idem's. */
const STEP_LOCK_CLASS = 0x69647374;

export interface PostgresStepStatements {
  /** Quoted, possibly schema-qualified table name, for `to_regclass`. */
  table: string;
  /** Quoted, possibly schema-qualified index name, for `to_regclass`. */
  index: string;
  exists: string;
  migrate: string;
  /** BEGIN and the step's lock, as one simple-protocol query. */
  begin(step: StepRef): string;
  select: { name: string; text: string };
  insert: { name: string; text: string };
  sweep: { name: string; text: string };
}

/** The statements for `table` in `schema` (or the search path); both validated identifiers. */
export function postgresStepStatements(table: string, schema: string | undefined): PostgresStepStatements {
  const prefix = schema === undefined ? '' : `"${schema}".`;
  const quoted = `${prefix}"${table}"`;
  const indexName = `"${table}_created_idx"`;
  const lockName = schema === undefined ? table : `${schema}.${table}`;
  // Named statements are prepared once per connection; the hash keeps two tables' apart.
  const named = `idem_steps_${hashText(lockName)
    .slice(0, 12)
    .replace(/[^A-Za-z0-9]/g, '_')}`;
  return {
    table: quoted,
    index: `${prefix}${indexName}`,

    /*
     * exists: the fast path, with no lock and no DDL, so a role without CREATE privilege can use
     * a table an operator created beforehand.
     * $1 quoted table name, $2 quoted index name. Returns one row: `ready` true when both exist.
     */
    exists: 'SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AS ready',

    /*
     * migrate: creates the table and its index if missing. One simple-protocol query is one
     * implicit transaction, so the advisory lock is held until both exist: without it, two
     * processes running CREATE TABLE IF NOT EXISTS at once can both pass the existence check and
     * one fails on pg_type's unique index. `run_id` compares byte for byte (COLLATE "C").
     * No parameters. Returns nothing.
     */
    migrate: `
      SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_CLASS}, hashtext('idem:steps:${lockName}'));
      CREATE TABLE IF NOT EXISTS ${quoted} (
        run_id TEXT COLLATE "C" NOT NULL,
        step_index INTEGER NOT NULL,
        name TEXT NOT NULL,
        data BYTEA NOT NULL,
        created_at_ms BIGINT NOT NULL,
        PRIMARY KEY (run_id, step_index)
      );
      CREATE INDEX IF NOT EXISTS ${indexName} ON ${quoted} (created_at_ms);`,

    /*
     * begin: opens the step's transaction and takes a transaction lock on the step. A second
     * holder of the same step waits here until the first commits or rolls back, and (in READ
     * COMMITTED, the default) its next statement sees the first one's row: so `fn` runs once,
     * instead of twice with one run thrown away at the INSERT. Under REPEATABLE READ or
     * SERIALIZABLE the snapshot predates the wait; the INSERT's unique violation still decides.
     * Two steps whose keys hash alike only wait for each other.
     * No parameters (simple protocol): the key is a number we computed. Returns nothing.
     */
    begin: (step) => `BEGIN; SELECT pg_advisory_xact_lock(${STEP_LOCK_CLASS}, ${stepLockKey(lockName, step)})`,

    /*
     * select: the step's row.
     * $1 run id, $2 step index. Returns zero or one row: name, data.
     */
    select: {
      name: `${named}_select`,
      text: `SELECT name, data FROM ${quoted} WHERE run_id = $1 AND step_index = $2`,
    },

    /*
     * insert: records the step, in the transaction of its writes. A concurrent holder's
     * uncommitted row makes it wait, then fail with unique_violation (23505) once that one commits.
     * $1 run id, $2 step index, $3 name, $4 data, $5 now (ms). Returns nothing.
     */
    insert: {
      name: `${named}_insert`,
      text: `INSERT INTO ${quoted} (run_id, step_index, name, data, created_at_ms) VALUES ($1, $2, $3, $4, $5)`,
    },

    /*
     * sweep: deletes up to $2 rows created before $1, oldest first; rows a concurrent sweep has
     * locked are skipped rather than waited for.
     * $1 before (ms), $2 limit. Returns the row count: how many were deleted.
     */
    sweep: {
      name: `${named}_sweep`,
      text: `
        DELETE FROM ${quoted}
        WHERE (run_id, step_index) IN (
          SELECT run_id, step_index FROM ${quoted}
          WHERE created_at_ms < $1
          ORDER BY created_at_ms
          LIMIT $2
          FOR UPDATE SKIP LOCKED
        )`,
    },
  };
}

/** The step's lock key: an int4 from the table, run and step. */
function stepLockKey(lockName: string, step: StepRef): number {
  return createHash('sha256').update(`${lockName}\n${step.runId}\n${step.stepIndex}`).digest().readInt32BE(0);
}
