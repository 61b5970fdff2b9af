import type { Command } from 'commander';
import { DEFAULT_STORE_URL } from '../store-url.js';

const STORE_HELP = `the store the workflows run on: sqlite:./idem.db | postgres://... | redis://... | mysql://... (default ${DEFAULT_STORE_URL})`;

const EXIT_CODES = `
Exit codes: 0 done; 1 no run with this id, or the store failed; 2 a usage mistake (a bad flag, a
store that keeps no journals: memory:, DynamoDB); 3 nothing to do and nothing changed: cancel of
a run that finished (completed or failed; cancelling a cancelled run again exits 0), resume of a
run that is not parked (dead or blocked).`;

const MODULE_HELP = `
The module (a path from the working directory; .js or .mjs, or .ts when the command runs under
tsx) exports register(workflows), or a default function, that defines the workflows on the
Workflows it is given, with the names and versions the runs were started with:

  export function register(workflows) {
    workflows.define('order', async (ctx, input) => { ... }, { version: 1 });
  }

Runs of workflows the module does not define are left to processes that do. Set
IDEM_ENCRYPTION_KEY (and IDEM_ENCRYPTION_OLD_KEYS) as the workflows run with.`;

/**
 * `idem workflows list|show|cancel|resume|worker`: look at durable workflow runs, act on one, run
 * a worker. The workflow runtime is loaded by the action, not when the program starts.
 */
export function registerWorkflows(program: Command): void {
  const workflows = program
    .command('workflows')
    .summary('list, show, cancel and resume workflow runs; run a worker')
    .description(
      'Look at the durable workflow runs (idem/workflow) in a store, cancel or resume one, or run a worker that ' +
        'takes over runs whose process stopped and wakes runs whose sleep is due. Set IDEM_ENCRYPTION_KEY when ' +
        'the workflows seal their journals.',
    )
    .addHelpText('after', EXIT_CODES);

  workflows
    .command('list')
    .description('List runs in store-key order: id, workflow@version, state, attempts, steps done, last update.')
    .option('--store <url>', STORE_HELP)
    .option(
      '--state <state>',
      'only runs in this state: running, pending, sleeping, waiting, completed, failed, cancelled, blocked or dead',
    )
    .option('--limit <n>', 'at most this many runs (default 100)')
    .option('--cursor <cursor>', 'continue after the listing that printed this cursor')
    .option('--json', 'one JSON object per line')
    .action(async (options) => (await import('../workflows/list-runs.js')).listWorkflows(options));

  workflows
    .command('show')
    .description('Show one run and its steps: state, attempts, time taken, value or error, wake time, undos.')
    .argument('<id>', 'the workflow id the run was started with')
    .option('--store <url>', STORE_HELP)
    .option('--json', 'as JSON, with whole values')
    .action(async (id, options) => (await import('../workflows/operate.js')).showWorkflow(id, options));

  workflows
    .command('cancel')
    .description(
      'Ask a run to stop: it runs the undos (compensate) of its finished steps and ends cancelled; a sleeping ' +
        'or parked run is woken for a worker to do it.',
    )
    .argument('<id>', 'the workflow id the run was started with')
    .option('--store <url>', STORE_HELP)
    .option('--reason <text>', 'why, recorded as the run\'s error (default "cancelled by an operator")')
    .addHelpText('after', EXIT_CODES)
    .action(async (id, options) => (await import('../workflows/operate.js')).cancelWorkflow(id, options));

  workflows
    .command('resume')
    .description(
      'Resume a parked run (dead after too many attempts, or blocked by code that no longer matches its ' +
        'steps): a worker takes it up at once, from its last recorded step.',
    )
    .argument('<id>', 'the workflow id the run was started with')
    .option('--store <url>', STORE_HELP)
    .addHelpText('after', EXIT_CODES)
    .action(async (id, options) => (await import('../workflows/operate.js')).resumeWorkflow(id, options));

  workflows
    .command('worker')
    .description(
      'Run the workflows your module defines: take over runs whose process stopped and runs whose sleep is ' +
        'due, one line per run taken and ended. SIGTERM or SIGINT stops taking runs and waits for the ' +
        'running ones (up to --grace), then exits 0.',
    )
    .option('--store <url>', STORE_HELP)
    .option('--module <path>', 'the module that exports register(workflows) (required)')
    .option('--concurrency <n>', 'runs executed at once (default 10)')
    .option('--poll-ms <n>', 'pause between looks for due runs when there is nothing to do, in ms (default 1000)')
    .option('--lease <duration>', 'how long a run taken over is held before another worker may take it (default 30s)')
    .option('--max-attempts <n>', 'takeovers after a crash before a run is parked as dead (default 10)')
    .option('--grace <duration>', 'on SIGTERM or SIGINT, how long runs in progress may go on (default 30s)')
    .addHelpText('after', MODULE_HELP)
    .action(async (options) => (await import('../workflows/worker.js')).runWorker(options));
}
