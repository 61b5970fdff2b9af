/** `idem workflows show|cancel|resume <id>`: one run, read or changed by an operator. */
import type { RunView, Workflows } from '../../workflow/index.js';
import { CliError, ExitCode, usageError } from '../cli-error.js';
import { print } from './list-runs.js';
import { withWorkflows } from './open-workflows.js';
import { jsonText, runDetails, runJson } from './run-format.js';

export interface RunOptions {
  store?: string;
  json?: boolean;
  reason?: string;
}

export async function showWorkflow(id: string, options: RunOptions): Promise<void> {
  await withWorkflows(options.store, async (workflows) => {
    const run = await workflows.status(id);
    // A run asked to stop shows it only once a holder acts on it: say so meanwhile.
    const cancelling = isFinished(run) ? undefined : await workflows.cancelReason(id);
    if (options.json)
      print(jsonText({ ...runJson(run, true), ...(cancelling === undefined ? {} : { cancelling }) }, 2));
    else print(runDetails(run, Date.now(), cancelling));
  });
}

/**
 * Asks the run to stop. Cancelling a cancelled run again is done already (exit 0); a run that
 * finished otherwise cannot be cancelled (exit 3, nothing changed).
 */
export async function cancelWorkflow(id: string, options: RunOptions): Promise<void> {
  const reason = options.reason ?? 'cancelled by an operator';
  if (reason.length > 1000) throw usageError('--reason: at most 1,000 characters.');
  await withWorkflows(options.store, async (workflows) => {
    const before = await workflows.status(id);
    if (before.state === 'cancelled') {
      const why = await workflows.cancelReason(id);
      print(`${id} was cancelled already${why === undefined ? '' : `: ${why}`}.`);
      return;
    }
    if (!(await workflows.cancel(id, reason))) throw finished(await workflows.status(id), 'cancel');
    print(`asked ${id} to stop (${JSON.stringify(reason)}): ${howItStops(before)}`);
  });
}

/** What happens next to a run asked to stop, by the state it was in. */
function howItStops(run: RunView): string {
  if (run.state === 'running') {
    return 'its holder stops before its next step, runs the undos of its finished steps, and ends it cancelled.';
  }
  return `it was ${run.state}; a worker (idem workflows worker) takes it up now, runs the undos of its finished steps, and ends it cancelled.`;
}

/** Resumes a parked run (dead or blocked); any other run is left as it is (exit 3). */
export async function resumeWorkflow(id: string, options: RunOptions): Promise<void> {
  await withWorkflows(options.store, async (workflows) => {
    const before = await workflows.status(id);
    if (!(await workflows.resume(id))) throw notParked(await current(workflows, id, before));
    print(
      `resumed ${id}, which was ${before.state}: a worker (idem workflows worker) takes it up now, from its last recorded step.`,
    );
  });
}

async function current(workflows: Workflows, id: string, fallback: RunView): Promise<RunView> {
  return workflows.status(id).catch(() => fallback);
}

function isFinished(run: RunView): boolean {
  return run.state === 'completed' || run.state === 'failed' || run.state === 'cancelled';
}

function finished(run: RunView, what: string): CliError {
  return new CliError(`${run.id} has finished (${run.state}): there is nothing to ${what}.`, ExitCode.unchanged);
}

function notParked(run: RunView): CliError {
  if (isFinished(run)) return finished(run, 'resume');
  return new CliError(
    `${run.id} is ${run.state}, not parked (dead or blocked): there is nothing to resume; a worker takes up a pending run by itself.`,
    ExitCode.unchanged,
  );
}
