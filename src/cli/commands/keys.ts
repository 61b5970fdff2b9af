import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import type { AdminStore, IdempotencyRecord, ListPage, RecordState } from '../../core/store.js';
import { CliError, ExitCode, reasonOf, usageError } from '../cli-error.js';
import { listRecords } from '../keys/list-records.js';
import { type KeyOptions, storeKeyFrom, withKeyOptions } from '../keys/record-name.js';
import { details, recordJson, table } from '../keys/record-view.js';
import { DEFAULT_STORE_URL, describeStore, openStore, parseStoreUrl } from '../store-url.js';

const STORE_HELP = `the store: sqlite:./idem.db | postgres://... | redis://... | mysql://... (default ${DEFAULT_STORE_URL})`;

interface ListCommandOptions {
  store?: string;
  state?: string;
  limit?: string;
  cursor?: string;
  json?: boolean;
}

interface SweepCommandOptions {
  store?: string;
  batch?: string;
}

/** `idem keys list|show|delete|release|sweep`: look at and manage stored keys. */
export function registerKeys(program: Command): void {
  const keys = program
    .command('keys')
    .summary('list, show, delete, release and sweep stored keys')
    .description('Look at and manage the records in an Idem store.');

  keys
    .command('list')
    .description('List records in store-key order (store keys are hashes of namespace, scope and key).')
    .option('--store <url>', STORE_HELP)
    .option('--state <state>', 'only in_progress or completed records')
    .option('--limit <n>', 'at most this many records (default 50)')
    .option('--cursor <cursor>', 'continue after the page that printed this cursor')
    .option('--json', 'one JSON object per line')
    .action(listKeys);

  withKeyOptions(
    keys.command('show').description('Show one record: state, times, attempts and the stored response.'),
    STORE_HELP,
  )
    .option('--json', 'as JSON')
    .action(showKey);

  withKeyOptions(
    keys
      .command('delete')
      .description('Delete one record, whatever its state: the next request with its key runs again.'),
    STORE_HELP,
  ).action(deleteKey);

  withKeyOptions(
    keys
      .command('release')
      .description(
        'Free a stuck in-progress key, so that a retry runs at once instead of waiting for its lease to end. ' +
          'Only for a holder you know is gone: if it is still running, its work will run twice.',
      ),
    STORE_HELP,
  ).action(releaseKey);

  keys
    .command('sweep')
    .description('Delete expired records (past their retention), in batches, with a progress bar on a terminal.')
    .option('--store <url>', STORE_HELP)
    .option('--batch <n>', 'records deleted per store call (default 1000)')
    .action(sweepKeys);
}

async function listKeys(options: ListCommandOptions): Promise<void> {
  const state = stateOf(options.state);
  const limit = positiveInteger(options.limit ?? '50', '--limit');
  await withStore(options.store, async (store) => {
    const page = await listRecords(store, {
      limit,
      ...(state === undefined ? {} : { state }),
      ...(options.cursor === undefined ? {} : { cursor: options.cursor }),
    });
    if (options.json) printPageJson(page);
    else printPage(page);
  });
}

/** One JSON object per record, then `{ nextCursor }` when there are more. */
function printPageJson(page: ListPage): void {
  for (const record of page.records) print(JSON.stringify(recordJson(record)));
  if (page.nextCursor !== undefined) print(JSON.stringify({ nextCursor: page.nextCursor }));
}

/** A table of the records, then the command that prints the next page when there are more. */
function printPage(page: ListPage): void {
  if (page.records.length === 0) {
    print('no records.');
    return;
  }
  print(table(page.records));
  if (page.nextCursor !== undefined) print(`\nmore: idem keys list --cursor ${page.nextCursor}`);
}

async function showKey(storeKey: string | undefined, options: KeyOptions): Promise<void> {
  const key = storeKeyFrom(storeKey, options);
  await withStore(options.store, async (store) => {
    const record = await found(store, key);
    if (options.json) print(JSON.stringify(recordJson(record, true), null, 2));
    else print(details(record));
  });
}

async function deleteKey(storeKey: string | undefined, options: KeyOptions): Promise<void> {
  const key = storeKeyFrom(storeKey, options);
  await withStore(options.store, async (store) => {
    if (!(await store.delete(key))) throw new CliError(`no record with store key ${key}.`);
    print(`deleted ${key}: the next request with this key runs again.`);
  });
}

async function releaseKey(storeKey: string | undefined, options: KeyOptions): Promise<void> {
  const key = storeKeyFrom(storeKey, options);
  await withStore(options.store, async (store) => {
    const record = await found(store, key);
    if (record.state !== 'in_progress') {
      throw new CliError(
        `${key} is completed, not in progress: it holds a stored response. To forget it, run idem keys delete ${key}.`,
      );
    }
    if (!(await store.release(key, record.token))) {
      throw new CliError(
        `${key} changed while releasing it (its holder finished or another took over); look again with idem keys show.`,
      );
    }
    const left = record.leaseExpiresAtMs - Date.now();
    print(
      `released ${key}: the next request with this key runs again` +
        (left > 0 ? ` (its lease had ${Math.ceil(left / 1000)} s left).` : ' (its lease had already ended).'),
    );
  });
}

async function sweepKeys(options: SweepCommandOptions): Promise<void> {
  const batch = positiveInteger(options.batch ?? '1000', '--batch');
  await withStore(options.store, async (store) => {
    if (store.sweep === undefined) {
      print(`${store.name} drops expired records by itself: there is nothing to sweep.`);
      return;
    }
    const nowMs = Date.now();
    const bar = process.stdout.isTTY ? await progressBar(store, nowMs) : undefined;
    let total: number;
    try {
      total = await sweepAll(store.sweep.bind(store), nowMs, batch, bar);
    } finally {
      bar?.stop();
    }
    print(`swept ${total} expired record${total === 1 ? '' : 's'} from ${store.name}.`);
  });
}

/** Sweeps batch after batch until one comes back short; resolves how many records were deleted. */
async function sweepAll(
  sweep: NonNullable<AdminStore['sweep']>,
  nowMs: number,
  batch: number,
  bar: cliProgress.SingleBar | undefined,
): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await sweep(nowMs, batch);
    total += deleted;
    bar?.update(total);
    if (deleted < batch) return total;
  }
}

async function withStore(url: string | undefined, use: (store: AdminStore) => Promise<void>): Promise<void> {
  const spec = parseStoreUrl(url ?? DEFAULT_STORE_URL);
  if (spec.kind === 'memory') {
    throw usageError(
      'memory: lives inside one process, so there is nothing to manage from here; name the store the gateway uses.',
    );
  }
  const store = await openStore(spec);
  try {
    await use(store);
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(
      `the ${spec.kind} store at ${describeStore(spec)} failed: ${reasonOf(error)}.`,
      ExitCode.failure,
      {
        cause: error,
      },
    );
  } finally {
    await store.close();
  }
}

async function found(store: AdminStore, key: string): Promise<IdempotencyRecord> {
  const record = await store.get(key);
  if (record === null) throw new CliError(`no record with store key ${key}.`);
  return record;
}

async function progressBar(store: AdminStore, nowMs: number): Promise<cliProgress.SingleBar> {
  // The stores count nothing for us: page through once to learn how many are due.
  let due = 0;
  let cursor: string | undefined;
  do {
    const page = await store.list({ limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    due += page.records.filter((record) => record.expiresAtMs <= nowMs).length;
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  const bar = new cliProgress.SingleBar(
    { format: 'sweeping {bar} {value}/{total} expired records', hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(due, 0);
  return bar;
}

function stateOf(state: string | undefined): RecordState | undefined {
  if (state === undefined) return undefined;
  if (state === 'in_progress' || state === 'completed') return state;
  throw usageError(`--state ${JSON.stringify(state)}: use in_progress or completed.`);
}

function positiveInteger(text: string, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) <= 0)
    throw usageError(`${what} ${JSON.stringify(text)}: use a whole number above 0.`);
  return Number(text);
}

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}
