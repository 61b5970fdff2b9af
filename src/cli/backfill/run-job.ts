/** `idem backfill <module>`: runs a job module's backfill with a progress bar and prints the summary. */
import { type BackfillResult, backfill } from '../../backfill/index.js';
import { ErrorCode, isIdempotencyError } from '../../core/errors.js';
import type { AdminStore } from '../../core/store.js';
import { CliError, ExitCode, reasonOf, usageError } from '../cli-error.js';
import { consoleOutput, type Output } from '../commands/serve.js';
import { parseDuration } from '../duration.js';
import { DEFAULT_STORE_URL, describeStore, openStore, parseStoreUrl } from '../store-url.js';
import { wholeNumber } from '../workflows/list-runs.js';
import { type BackfillJob, loadJob } from './job-module.js';
import { barView, lineView, type ProgressView, quietView, summaryJson, summaryLines } from './progress-view.js';

export interface BackfillCommandOptions {
  store?: string;
  concurrency?: string;
  name?: string;
  retries?: string;
  batchSize?: string;
  lease?: string;
  /** False with `--no-progress`. */
  progress?: boolean;
  json?: boolean;
}

interface Settings {
  concurrency: number;
  maxAttempts: number;
  batchSize: number | undefined;
  leaseMs: number | undefined;
}

function settingsOf(options: BackfillCommandOptions): Settings {
  const retries = options.retries ?? '2';
  if (!/^\d+$/.test(retries) || !Number.isSafeInteger(Number(retries))) {
    throw usageError(`--retries ${JSON.stringify(retries)}: use a whole number, 0 or more.`);
  }
  const batchSize = options.batchSize === undefined ? undefined : wholeNumber(options.batchSize, '--batch-size');
  if (batchSize !== undefined && batchSize > 1000) throw usageError(`--batch-size ${batchSize}: use 1 to 1000.`);
  return {
    concurrency: wholeNumber(options.concurrency ?? '8', '--concurrency'),
    maxAttempts: Number(retries) + 1,
    batchSize,
    leaseMs: options.lease === undefined ? undefined : parseDuration(options.lease, '--lease'),
  };
}

/** What the command reads from its surroundings; tests give their own. */
export interface BackfillIo {
  output: Output;
  /** True when progress may be drawn as a bar (stderr is a terminal). */
  terminal: boolean;
}

/**
 * Runs the job: exit code 0 when every item is done (or was done before), 1 when some failed,
 * the run was stopped (SIGINT, SIGTERM) or the store failed, 2 for a usage mistake.
 */
export async function runBackfillCommand(
  path: string,
  options: BackfillCommandOptions,
  io: BackfillIo = { output: consoleOutput, terminal: process.stderr.isTTY === true },
): Promise<void> {
  const settings = settingsOf(options);
  const job = await loadJob(path);
  const spec = parseStoreUrl(options.store ?? DEFAULT_STORE_URL);
  if (spec.kind === 'memory') {
    throw usageError(
      'memory: keeps nothing once the command ends, so a re-run could not skip what is done: use sqlite:./idem.db or a server store.',
    );
  }
  const store = await openStore(spec);
  const where = describeStore(spec);
  const view = viewOf(options, io);
  let result: BackfillResult;
  try {
    result = await runJob(job, options.name ?? job.name, store, settings, view, io.output);
  } catch (error) {
    throw cliErrorOf(error, path, where);
  } finally {
    view.stop();
    await store.close();
  }
  if (options.json === true) io.output.out(summaryJson(result, where));
  else for (const text of summaryLines(result, where)) io.output.out(text);
  if (result.failed.length > 0 || result.stopped) process.exitCode = ExitCode.failure;
}

async function runJob(
  job: BackfillJob,
  name: string,
  store: AdminStore,
  settings: Settings,
  view: ProgressView,
  output: Output,
): Promise<BackfillResult> {
  const stopping = new AbortController();
  const stop = (signal: NodeJS.Signals) => {
    if (stopping.signal.aborted) {
      output.err(
        `idem: second ${signal}: exiting now; items in progress are taken up by the next run after their lease.`,
      );
      process.exit(ExitCode.failure);
    }
    output.err(`idem: ${signal}: starting no new item; waiting for those in progress (${signal} again exits now).`);
    stopping.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    return await backfill({
      name,
      store,
      items: await job.items(),
      key: job.key,
      handler: job.handler,
      concurrency: settings.concurrency,
      maxAttempts: settings.maxAttempts,
      ...(settings.batchSize === undefined ? {} : { batchSize: settings.batchSize }),
      ...(settings.leaseMs === undefined ? {} : { leaseMs: settings.leaseMs }),
      ...(job.total === undefined ? {} : { total: job.total }),
      signal: stopping.signal,
      onProgress: (progress) => view.update(progress),
      progressIntervalMs: view.intervalMs,
    });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

function viewOf(options: BackfillCommandOptions, io: BackfillIo): ProgressView {
  if (options.json === true || options.progress === false) return quietView;
  return io.terminal ? barView() : lineView(io.output);
}

function cliErrorOf(error: unknown, path: string, where: string): CliError {
  if (error instanceof CliError) return error;
  if (isIdempotencyError(error, ErrorCode.INVALID_OPTIONS)) return usageError(`backfill ${path}: ${reasonOf(error)}.`);
  if (isIdempotencyError(error, ErrorCode.STORE_UNAVAILABLE) || isIdempotencyError(error, ErrorCode.STORE_CLOSED)) {
    return new CliError(
      `backfill ${path}: the store at ${where} failed: ${reasonOf(error)}. Items done so far stay done: run the command again once the store is back.`,
      ExitCode.failure,
      { cause: error },
    );
  }
  return new CliError(`backfill ${path}: ${reasonOf(error)}.`, ExitCode.failure, { cause: error });
}
