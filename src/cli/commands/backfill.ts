import type { Command } from 'commander';
import { DEFAULT_STORE_URL } from '../store-url.js';

const STORE_HELP = `the store the items' records are kept in: sqlite:./idem.db | postgres://... | redis://... | mysql://... (default ${DEFAULT_STORE_URL})`;

const MODULE_HELP = `
The module (a path from the working directory; .js or .mjs, or .ts when the command runs under
tsx) exports the items, their key and the work to do for each:

  export const name = 'welcome-credits';             // optional: default, the file's name
  export async function* items() { ... }              // an array, an (async) iterable, or a function giving one
  export function key(user) { return user.id; }       // a stable id per item
  export async function handler(user, ctx) { ... }    // ctx.idempotencyKey: key the effect by it
  export const total = 120000;                        // optional: for the time left

Run it again to go on after a crash or a stop: what is done is skipped, what failed is tried again.

Exit codes: 0 every item done (now or before); 1 some items failed (listed), the run was stopped
(SIGINT, SIGTERM) or the store failed; 2 a usage mistake (a bad flag, a module without the exports).`;

/** `idem backfill <module>`: runs a job module's backfill (idem/backfill), each item once across re-runs. */
export function registerBackfill(program: Command): void {
  program
    .command('backfill')
    .summary('run a backfill once per item, resumable (idem/backfill)')
    .description(
      'Run the handler of a job module once for each of its items, across re-runs and crashes: items done by an ' +
        'earlier run are skipped, failing ones are retried and then listed; a progress bar shows done, skipped, ' +
        'failed, rate and time left, and a summary ends the run.',
    )
    .argument('<module>', 'the job module: exports items, key and handler')
    .option('--store <url>', STORE_HELP)
    .option(
      '--name <name>',
      "the backfill's name, which its records are kept under (default: the module's name export, else its file name)",
    )
    .option('--concurrency <n>', 'items processed at once (default 8)')
    .option(
      '--retries <n>',
      'calls of a failing handler after the first, per item, before it is listed failed (default 2)',
    )
    .option('--batch-size <n>', 'items whose records are read at once, 1 to 1000 (default 500)')
    .option('--lease <duration>', 'how long an item is held before another runner may take it over (default 30s)')
    .option('--no-progress', 'no progress bar or progress lines')
    .option('--json', 'the summary as one JSON object on stdout, and no progress')
    .addHelpText('after', MODULE_HELP)
    .action(async (module, options) => (await import('../backfill/run-job.js')).runBackfillCommand(module, options));
}
