/** `idem workflows worker`: runs the user's workflows, taking over runs whose holder stopped and sleeps that are due. */
import { setTimeout as sleep } from 'node:timers/promises';
import { CliError, ExitCode, reasonOf, usageError } from '../cli-error.js';
import { consoleOutput, nextSignal, type Output } from '../commands/serve.js';
import { formatDuration, parseDuration } from '../duration.js';
import { describeStore } from '../store-url.js';
import { wholeNumber } from './list-runs.js';
import { LoggedWorkflows } from './logged-workflows.js';
import { cliErrorOf, openJournalStore, workflowsOver } from './open-workflows.js';
import { loadRegister } from './user-module.js';

export interface WorkerCommandOptions {
  store?: string;
  module?: string;
  concurrency?: string;
  pollMs?: string;
  lease?: string;
  maxAttempts?: string;
  grace?: string;
}

interface WorkerSettings {
  module: string;
  concurrency: number;
  pollMs: number;
  leaseMs: number | undefined;
  maxAttempts: number | undefined;
  graceMs: number;
}

function settingsOf(options: WorkerCommandOptions): WorkerSettings {
  if (options.module === undefined) {
    throw usageError('--module is required: the .js or .mjs file that exports register(workflows).');
  }
  return {
    module: options.module,
    concurrency: wholeNumber(options.concurrency ?? '10', '--concurrency'),
    pollMs: wholeNumber(options.pollMs ?? '1000', '--poll-ms'),
    leaseMs: options.lease === undefined ? undefined : parseDuration(options.lease, '--lease'),
    maxAttempts: options.maxAttempts === undefined ? undefined : wholeNumber(options.maxAttempts, '--max-attempts'),
    graceMs: parseDuration(options.grace ?? '30s', '--grace'),
  };
}

export async function runWorker(options: WorkerCommandOptions, output: Output = consoleOutput): Promise<void> {
  const settings = settingsOf(options);
  const register = await loadRegister(settings.module);
  const { store, spec } = await openJournalStore(options.store);
  try {
    const workflows = workflowsOver(store, (all) => new LoggedWorkflows(all, (line) => output.out(`idem: ${line}`)), {
      ...(settings.leaseMs === undefined ? {} : { leaseMs: settings.leaseMs }),
      ...(settings.maxAttempts === undefined ? {} : { maxAttempts: settings.maxAttempts }),
    });
    try {
      await register(workflows);
    } catch (error) {
      throw new CliError(
        `register(workflows) of --module ${settings.module} failed: ${reasonOf(error)}.`,
        ExitCode.failure,
        {
          cause: error,
        },
      );
    }
    if (workflows.defined.length === 0) {
      throw usageError(
        `register(workflows) of --module ${settings.module} defined no workflow: call workflows.define(...) in it.`,
      );
    }
    // Catch the signals before the first line: whoever reads it may signal at once.
    const signal = nextSignal();
    const worker = workflows
      .worker({
        concurrency: settings.concurrency,
        pollMs: settings.pollMs,
        onError: (error) =>
          output.err(`idem: worker: ${reasonOf(error)}; trying again in ${formatDuration(settings.pollMs)}.`),
      })
      .start();
    output.out(
      `idem: workflows worker on ${describeStore(spec)} runs ${workflows.defined.join(', ')} ` +
        `(concurrency ${settings.concurrency}, poll ${formatDuration(settings.pollMs)}); SIGTERM or SIGINT stops it.`,
    );
    await stopOn(await signal, worker, workflows, settings.graceMs, output);
  } catch (error) {
    throw cliErrorOf(error, spec);
  } finally {
    await store.close();
  }
}

/** After `signal`: takes no more runs, lets the running ones reach an end for up to `graceMs`. */
async function stopOn(
  signal: NodeJS.Signals,
  worker: { stop(): Promise<void> },
  workflows: LoggedWorkflows,
  graceMs: number,
  output: Output,
): Promise<void> {
  // A second signal means "now": the runs in progress are taken up again by a worker after their lease.
  const force = () => {
    output.err('idem: second signal: exiting now; the runs in progress are taken up again after their lease.');
    process.exit(1);
  };
  process.once('SIGTERM', force);
  process.once('SIGINT', force);
  output.err(`idem: ${signal}: taking no more runs; ${workflows.runningCount} run(s) in progress.`);
  const grace = new AbortController();
  const stopped = await Promise.race([
    worker.stop().then(() => true),
    sleep(graceMs, false, { signal: grace.signal }).catch(() => false),
  ]);
  grace.abort();
  if (!stopped) {
    output.err(
      `idem: ${workflows.runningCount} run(s) still in progress after --grace ${formatDuration(graceMs)}: ` +
        'left as they are; a worker takes them up again after their lease.',
    );
  }
  output.err(`idem: stopped: ${workflows.summary()}.`);
}
