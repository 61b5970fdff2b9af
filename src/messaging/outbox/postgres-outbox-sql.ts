/**
 * The statements of `postgresOutbox`: its table, the enqueue, the relay pass and the operators'
 * reads. The table name is a validated identifier, quoted here; every value is a parameter.
 */
import { hashText } from '../../core/canonical.js';

/** Classid of the migration's advisory lock: the bytes of `idem` as an int4, as the PostgreSQL store's. */
const MIGRATION_LOCK_CLASS = 0x6964656d;

/** A statement prepared once per connection under its name. */
export interface Named {
  name: string;
  text: string;
}

export interface PostgresOutboxStatements {
  /** The quoted table and last index names, for `to_regclass`. */
  table: string;
  lastIndex: string;
  exists: string;
  begin: string;
  migrate: string;
  enqueue: Named;
  claim: Named;
  markPublished: Named;
  markFailed: Named;
  counts: Named;
  dead: Named;
  revive: Named;
  cleanup: Named;
}

/** The columns a relay reads, in `PendingRow` order. */
const PENDING_COLUMNS = 'o.seq, o.id, o.topic, o.key, o.payload, o.headers, o.attempts, o.created_at_ms';

export function postgresOutboxStatements(table: string): PostgresOutboxStatements {
  const t = `"${table}"`;
  const index = (suffix: string) => `"${table}_${suffix}"`;
  // Named statements are prepared once per connection; the hash keeps two tables' apart.
  const prefix = `idem_outbox_${hashText(table)
    .slice(0, 12)
    .replace(/[^A-Za-z0-9]/g, '_')}`;
  const named = (name: string, text: string): Named => ({ name: `${prefix}_${name}`, text });
  return {
    table: t,
    lastIndex: index('dead_idx'),

    /*
     * exists: the fast path, with no lock and no DDL, so a role without CREATE can use a table an
     * operator created beforehand.
     * $1 quoted table name, $2 quoted name of the last index created. Returns one row: `ready`.
     */
    exists: 'SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AS ready',

    /*
     * migrate: the table and its indexes, if missing, under an advisory lock held to the end of
     * this one implicit transaction (two processes creating it at once would otherwise collide on
     * pg_type). Partial indexes: the due scan walks pending rows in enqueue order; the key index
     * finds a key's oldest pending; cleanup walks published rows by publish time; dead() lists dead
     * ones. Ids and keys compare byte for byte (COLLATE "C"). No parameters. Returns nothing.
     */
    migrate: `
      SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_CLASS}, hashtext('idem:outbox:${table}'));
      CREATE TABLE IF NOT EXISTS ${t} (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT COLLATE "C" NOT NULL,
        topic TEXT NOT NULL,
        key TEXT COLLATE "C",
        payload BYTEA NOT NULL,
        headers TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'published', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at_ms BIGINT NOT NULL,
        last_error TEXT,
        created_at_ms BIGINT NOT NULL,
        published_at_ms BIGINT,
        CONSTRAINT ${index('id_key')} UNIQUE (id)
      );
      CREATE INDEX IF NOT EXISTS ${index('due_idx')} ON ${t} (seq, next_attempt_at_ms) WHERE state = 'pending';
      CREATE INDEX IF NOT EXISTS ${index('key_idx')} ON ${t} (key, seq) WHERE state = 'pending' AND key IS NOT NULL;
      CREATE INDEX IF NOT EXISTS ${index('published_idx')} ON ${t} (published_at_ms) WHERE state = 'published';
      CREATE INDEX IF NOT EXISTS ${index('dead_idx')} ON ${t} (seq) WHERE state = 'dead';`,

    /*
     * begin: opens a relay pass. A table filled in a burst before it was ever analyzed looks
     * nearly empty to the planner, which then sorts every due row and runs the per-key subquery
     * on each (hundreds of ms for 20,000 rows) instead of walking due_idx in seq order and
     * stopping at the limit (under 1 ms). The pass's statements need neither a sort nor a bitmap
     * scan, so they are ruled out for this transaction alone. Simple protocol, one round trip.
     * No parameters. Returns nothing.
     */
    begin: 'BEGIN; SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off',

    /*
     * enqueue: the message, in the caller's transaction; an id already there is left as it is
     * (a concurrent transaction's uncommitted row makes this wait for its outcome).
     * $1 id, $2 topic, $3 key, $4 payload, $5 headers (JSON), $6 next attempt (ms), $7 now (ms).
     * Returns nothing.
     */
    enqueue: named(
      'enqueue',
      `INSERT INTO ${t} (id, topic, key, payload, headers, next_attempt_at_ms, created_at_ms)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
    ),

    /*
     * claim: locks up to $2 pending messages due by $1, oldest first, skipping those another pass
     * holds. A keyed message is taken only when it is its key's oldest pending one. That subquery
     * takes no lock, so it does not skip locked rows: while another pass holds a key's first
     * message, the first is skipped and the second is not the oldest, so neither is taken. A first
     * message another pass published after this statement's snapshot is re-checked on the new row
     * version (READ COMMITTED) and left out.
     * $1 now (ms), $2 limit. Returns the rows, in `PendingRow` order.
     */
    claim: named(
      'claim',
      `SELECT ${PENDING_COLUMNS} FROM ${t} o
       WHERE o.state = 'pending' AND o.next_attempt_at_ms <= $1
         AND (o.key IS NULL OR o.seq = (
           SELECT min(p.seq) FROM ${t} p WHERE p.key = o.key AND p.state = 'pending'))
       ORDER BY o.seq
       LIMIT $2
       FOR UPDATE OF o SKIP LOCKED`,
    ),

    /*
     * markPublished: the pass's published messages.
     * $1 seqs (bigint[]), $2 now (ms). Returns nothing.
     */
    markPublished: named(
      'mark_published',
      `UPDATE ${t} SET state = 'published', published_at_ms = $2 WHERE seq = ANY($1::bigint[])`,
    ),

    /*
     * markFailed: the pass's failed messages: pending again at their next attempt, or dead when
     * that is NULL. $1 seqs, $2 attempts, $3 next attempts (ms, NULL: dead), $4 errors, all arrays
     * of one length. Returns nothing.
     */
    markFailed: named(
      'mark_failed',
      `UPDATE ${t} AS m SET
         state = CASE WHEN u.next_at IS NULL THEN 'dead' ELSE 'pending' END,
         attempts = u.attempts,
         next_attempt_at_ms = COALESCE(u.next_at, m.next_attempt_at_ms),
         last_error = u.error
       FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::text[]) AS u(seq, attempts, next_at, error)
       WHERE m.seq = u.seq`,
    ),

    /*
     * counts: messages in each state, each count on its own partial index.
     * No parameters. Returns one row: pending, published, dead (bigint, as strings).
     */
    counts: named(
      'counts',
      `SELECT
         (SELECT count(*) FROM ${t} WHERE state = 'pending') AS pending,
         (SELECT count(*) FROM ${t} WHERE state = 'published') AS published,
         (SELECT count(*) FROM ${t} WHERE state = 'dead') AS dead`,
    ),

    /*
     * dead: dead messages, oldest first.
     * $1 limit. Returns the rows in `PendingRow` order, then last_error.
     */
    dead: named(
      'dead',
      `SELECT ${PENDING_COLUMNS}, o.last_error FROM ${t} o WHERE o.state = 'dead' ORDER BY o.seq LIMIT $1`,
    ),

    /*
     * revive: a dead message pending again, due at once, its attempts reset.
     * $1 id. Returns the row count: 1 when it was dead.
     */
    revive: named(
      'revive',
      `UPDATE ${t} SET state = 'pending', attempts = 0, next_attempt_at_ms = 0, last_error = NULL
       WHERE id = $1 AND state = 'dead'`,
    ),

    /*
     * cleanup: deletes up to $2 messages published before $1, oldest first; rows a concurrent
     * cleanup holds are skipped rather than waited for.
     * $1 before (ms), $2 limit. Returns the row count.
     */
    cleanup: named(
      'cleanup',
      `DELETE FROM ${t} WHERE seq IN (
         SELECT seq FROM ${t} WHERE state = 'published' AND published_at_ms < $1
         ORDER BY published_at_ms LIMIT $2 FOR UPDATE SKIP LOCKED)`,
    ),
  };
}
