/**
 * Idem as it was just before telemetry was added, for the "zero cost when unused" figure: the
 * `src/` tree of that commit, extracted with `git archive` into .tmp/ (git-ignored, outside the
 * type check and the linter) and imported next to today's, so both run in one process, in the same
 * rounds; its packages resolve from the repository's node_modules.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** main just before the merge of the telemetry branch (it already had the sweeper). */
export const PRE_TELEMETRY_COMMIT = 'fdff3df';

/**
 * The `src/` directory of `PRE_TELEMETRY_COMMIT` as a URL ending in `/`, or why it cannot be had
 * (no git, a checkout without that history).
 */
export function preTelemetrySource(): URL | string {
  const repo = fileURLToPath(new URL('..', import.meta.url));
  const directory = new URL(`../.tmp/pre-telemetry-${PRE_TELEMETRY_COMMIT}/`, import.meta.url);
  const source = new URL('src/', directory);
  if (existsSync(new URL('core/idempotent.ts', source))) return source;
  mkdirSync(directory, { recursive: true });
  const extract = spawnSync(
    'sh',
    [
      '-c',
      `git -C "$1" archive --format=tar "$2" src | tar -x -C "$3"`,
      'sh',
      repo,
      PRE_TELEMETRY_COMMIT,
      fileURLToPath(directory),
    ],
    { encoding: 'utf8' },
  );
  if (extract.status !== 0 || !existsSync(new URL('core/idempotent.ts', source))) {
    return `git archive ${PRE_TELEMETRY_COMMIT} failed (${(extract.stderr || `exit ${extract.status}`).trim().slice(0, 160)})`;
  }
  return source;
}
