/** `idem workflows list`: pages through the runs of a store, with a progress bar when it takes many pages. */
import cliProgress from 'cli-progress';
import type { RunState, RunView, Workflows } from '../../workflow/index.js';
import { usageError } from '../cli-error.js';
import { withWorkflows } from './open-workflows.js';
import { jsonText, runJson, runsTable } from './run-format.js';

export interface ListOptions {
  store?: string;
  limit?: string;
  state?: string;
  cursor?: string;
  json?: boolean;
}

const STATES = [
  'running',
  'pending',
  'sleeping',
  'waiting',
  'completed',
  'failed',
  'cancelled',
  'blocked',
  'dead',
] as const;

/**
 * Runs read per page: each costs two store reads (the record and its journal), so pages stay
 * small enough that a slow store still shows progress.
 */
const PAGE_SIZE = 100;

export async function listWorkflows(options: ListOptions): Promise<void> {
  const limit = wholeNumber(options.limit ?? '100', '--limit');
  const state = stateOf(options.state);
  await withWorkflows(options.store, async (workflows) => {
    const listing = await collectRuns(workflows, { limit, state, cursor: options.cursor });
    if (options.json) printJson(listing);
    else printTable(listing, state);
  });
}

/** One JSON object per run, then `{ nextCursor }` when there are more. */
function printJson(listing: Listing): void {
  for (const run of listing.runs) print(jsonText(runJson(run, false)));
  if (listing.nextCursor !== undefined) print(jsonText({ nextCursor: listing.nextCursor }));
}

/** A table of the runs, then the command that goes on when there are more. */
function printTable(listing: Listing, state: RunState | undefined): void {
  if (listing.runs.length === 0) print(state === undefined ? 'no runs.' : `no ${state} runs.`);
  else print(runsTable(listing.runs));
  if (listing.nextCursor === undefined) return;
  const again = [`--cursor ${listing.nextCursor}`, ...(state === undefined ? [] : [`--state ${state}`])];
  print(`\nmore: idem workflows list ${again.join(' ')}`);
}

interface Listing {
  runs: RunView[];
  nextCursor: string | undefined;
}

/**
 * Up to `limit` runs in `state` from `cursor` on. The store cannot filter by state, so runs are
 * read and filtered here; a page never asks for more runs than are still wanted, so the cursor
 * it ends with is exactly where the next listing goes on.
 */
async function collectRuns(
  workflows: Workflows,
  options: { limit: number; state: RunState | undefined; cursor: string | undefined },
): Promise<Listing> {
  const runs: RunView[] = [];
  const progress = new ListProgress(options.limit);
  let read = 0;
  let cursor = options.cursor;
  try {
    do {
      const page = await workflows.list({
        limit: Math.min(PAGE_SIZE, options.limit - runs.length),
        ...(cursor === undefined ? {} : { cursor }),
      });
      read += page.runs.length;
      runs.push(...page.runs.filter((run) => options.state === undefined || run.state === options.state));
      cursor = page.nextCursor;
      progress.page(runs.length, read, cursor !== undefined);
    } while (cursor !== undefined && runs.length < options.limit);
  } finally {
    progress.stop();
  }
  return { runs, nextCursor: cursor };
}

/** A bar on stderr, from the second page on and only on a terminal: how many of the runs asked for are found, of how many read. */
class ListProgress {
  readonly #total: number;
  #bar: cliProgress.SingleBar | undefined;
  #pages = 0;

  constructor(total: number) {
    this.#total = total;
  }

  page(found: number, read: number, more: boolean): void {
    this.#pages += 1;
    if (this.#bar === undefined && more && this.#pages === 1 && process.stderr.isTTY) {
      this.#bar = new cliProgress.SingleBar(
        {
          format: 'listing runs {bar} {value}/{total} ({read} read)',
          hideCursor: true,
          clearOnComplete: true,
          stream: process.stderr,
        },
        cliProgress.Presets.shades_classic,
      );
      this.#bar.start(this.#total, found, { read });
    }
    this.#bar?.update(found, { read });
  }

  stop(): void {
    this.#bar?.stop();
  }
}

function stateOf(state: string | undefined): RunState | undefined {
  if (state === undefined) return undefined;
  if ((STATES as readonly string[]).includes(state)) return state as RunState;
  throw usageError(`--state ${JSON.stringify(state)}: use one of ${STATES.join(', ')}.`);
}

/** A whole number above 0 given for `what`, e.g. `--limit`. */
export function wholeNumber(text: string, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) <= 0 || !Number.isSafeInteger(Number(text))) {
    throw usageError(`${what} ${JSON.stringify(text)}: use a whole number above 0.`);
  }
  return Number(text);
}

export function print(line: string): void {
  process.stdout.write(`${line}\n`);
}
