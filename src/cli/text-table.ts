/**
 * Rows of text as aligned columns, two spaces apart, without trailing spaces: the CLI's tables.
 * Control characters in a cell (stored data an application or a caller wrote: ids, topics, error
 * text) are shown escaped, `\x1b`, so they cannot move the cursor or recolour the operator's terminal.
 */
export function columns(cells: readonly (readonly string[])[]): string {
  const rows = cells.map((row) => row.map(escapeControls));
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** C0 controls, DEL and C1 controls. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;

/** `text` with its control characters (C0, DEL, C1) written as `\xHH`. */
export function escapeControls(text: string): string {
  return text.replace(CONTROLS, (char) => `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
