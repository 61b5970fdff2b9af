/** Reading an SQL statement's text for what makes an INSERT safe to run twice. */

/** An INSERT statement, alone or after a `WITH ...` clause: `INSERT [IGNORE | OR ...] INTO`. */
const INSERT = /\binsert\s+(?:ignore\s+|or\s+\w+\s+)?into\b/i;
/**
 * Clauses that make an INSERT conflict-safe: PostgreSQL and SQLite `ON CONFLICT`, MySQL
 * `ON DUPLICATE KEY UPDATE` and `INSERT IGNORE`, SQLite `INSERT OR IGNORE` / `OR REPLACE`, and an
 * `INSERT ... SELECT ... WHERE NOT EXISTS` guard.
 */
const GUARDED =
  /\bon\s+conflict\b|\bon\s+duplicate\s+key\b|\binsert\s+(?:or\s+(?:ignore|replace)|ignore)\b|\bwhere\s+not\s+exists\b/i;

/** Whether `sql` is an INSERT with none of the clauses that make a repeat harmless. */
export function isBlindInsert(sql: string): boolean {
  return INSERT.test(sql) && !GUARDED.test(sql);
}

/**
 * Where ` ON CONFLICT DO NOTHING` goes in the source text of a string or template literal: before
 * `RETURNING`, else after the statement's last character (before a trailing `;`, spaces and the
 * closing quote). An offset into `source`.
 */
export function onConflictOffset(source: string): number {
  const returning = /\s+returning\b/i.exec(source);
  if (returning !== null) return returning.index;
  let end = source.length - 1; // the closing quote or backtick
  while (end > 0 && /[\s;]/.test(source[end - 1] ?? '')) end--;
  return end;
}
