import { usageError } from './cli-error.js';

const UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/**
 * Parses a duration such as `500ms`, `30s`, `2m`, `24h` or `7d` into milliseconds. A number
 * without a unit is refused: `30` could mean seconds or milliseconds, and guessing wrong turns a
 * 30-second lease into a 30-millisecond one.
 *
 * @example
 * ```ts
 * parseDuration('24h', '--retention'); // 86_400_000
 * ```
 */
export function parseDuration(text: string, what = 'duration'): number {
  const trimmed = String(text).trim();
  const match = DURATION.exec(trimmed);
  if (match === null) {
    const hint = /^\d+(\.\d+)?$/.test(trimmed) ? ` (add a unit: ${trimmed}s or ${trimmed}ms)` : '';
    throw usageError(
      `${what}: ${JSON.stringify(text)} is not a duration${hint}; use a number and a unit, e.g. 500ms, 30s, 2m, 24h or 7d.`,
    );
  }
  const ms = Math.round(Number(match[1]) * UNITS[match[2] as keyof typeof UNITS]);
  if (ms <= 0) throw usageError(`${what}: ${JSON.stringify(text)} must be longer than 0.`);
  if (!Number.isSafeInteger(ms)) throw usageError(`${what}: ${JSON.stringify(text)} is too long.`);
  return ms;
}

/** A duration in ms as the shortest readable text: `500ms`, `30s`, `2m`, `24h`. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', UNITS.d],
    ['h', UNITS.h],
    ['m', UNITS.m],
    ['s', UNITS.s],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return ms >= 1000 ? `${ms / 1000}s` : `${ms}ms`;
}
