/**
 * How the MySQL / MariaDB store binds text and reads what `mysql2` answers: OK packets, error
 * numbers. Shared by the records' operations and the journal's.
 */

/** ER_LOCK_DEADLOCK: InnoDB rolled the victim's whole transaction back, so it may run again. */
export const ER_LOCK_DEADLOCK = 1213;
/** ER_DUP_ENTRY: an INSERT found the key taken; nothing was written. */
export const ER_DUP_ENTRY = 1062;

/**
 * Binds text as its UTF-8 bytes (sent as `X'..'`), so the stored bytes do not depend on the
 * connection's character set and compare exactly against the VARBINARY columns.
 */
export function bytesOf(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

export function textOf(value: Buffer | string): string {
  return typeof value === 'string' ? value : value.toString('utf8');
}

export function affectedRows(header: unknown): number {
  return Number((header as { affectedRows?: number | string }).affectedRows ?? 0);
}

/**
 * Rows an UPDATE or DELETE matched. `affectedRows` counts matched rows when the client sets
 * CLIENT_FOUND_ROWS (mysql2's default) but only changed rows otherwise; an UPDATE's info line
 * (`Rows matched: 1  Changed: 0  Warnings: 0`) gives the matched count either way.
 */
export function matchedRows(header: unknown): number {
  const affected = affectedRows(header);
  if (affected > 0) return affected;
  const info = (header as { info?: unknown }).info;
  const matched = typeof info === 'string' ? /Rows matched:\s*(\d+)/i.exec(info)?.[1] : undefined;
  return matched === undefined ? 0 : Number(matched);
}

export function errno(error: unknown): number | undefined {
  const value = (error as { errno?: unknown } | null)?.errno;
  return typeof value === 'number' ? value : undefined;
}
