import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { hashText } from '../../core/canonical.js';
import { storeKeyOf } from '../../core/keys.js';
import { isSealed, OutcomeCodec, OutcomeKind } from '../../core/outcome.js';
import type { AdminStore, IdempotencyRecord, RecordState } from '../../core/store.js';
import { CliError, ExitCode, reasonOf, usageError } from '../cli-error.js';
import { DEFAULT_STORE_URL, describeStore, openStore, parseStoreUrl } from '../store-url.js';

const STORE_HELP = `the store: sqlite:./idem.db | postgres://... | redis://... | mysql://... (default ${DEFAULT_STORE_URL})`;

const KEY_HELP = `
A record is named either by its store key, the hash that \`idem keys list\` prints:
  idem keys show 3q2-7w...
or by the caller's raw key and where it was used. For keys the gateway or an HTTP adapter
stored, give the path and, if the client sent one, its Authorization header:
  idem keys show --key order-42 --path /payments [--method POST] [--authorization "Bearer sk_test"]
For keys of other faces, give the namespace and scope they used; for idempotent(fn) the namespace
is its name option (or the function's name) and the scope '' unless a scope function is set:
  idem keys show --key order-42 --namespace chargeCard --scope tenant-7`;

/** How a command names one record: by store key, or by raw key and scope. */
interface KeyOptions {
  store?: string;
  key?: string;
  scope?: string;
  path?: string;
  method?: string;
  authorization?: string;
  namespace?: string;
  json?: boolean;
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
    .action(async (options: { store?: string; state?: string; limit?: string; cursor?: string; json?: boolean }) => {
      const state = stateOf(options.state);
      const limit = positiveInteger(options.limit ?? '50', '--limit');
      await withStore(options.store, async (store) => {
        const page = await store.list({
          limit,
          ...(state === undefined ? {} : { state }),
          ...(options.cursor === undefined ? {} : { cursor: options.cursor }),
        });
        if (options.json) {
          for (const record of page.records) print(JSON.stringify(recordJson(record)));
          if (page.nextCursor !== undefined) print(JSON.stringify({ nextCursor: page.nextCursor }));
          return;
        }
        if (page.records.length === 0) {
          print('no records.');
          return;
        }
        print(table(page.records));
        if (page.nextCursor !== undefined) print(`\nmore: idem keys list --cursor ${page.nextCursor}`);
      });
    });

  withKeyOptions(keys.command('show').description('Show one record: state, times, attempts and the stored response.'))
    .option('--json', 'as JSON')
    .action(async (storeKey: string | undefined, options: KeyOptions) => {
      const key = storeKeyFrom(storeKey, options);
      await withStore(options.store, async (store) => {
        const record = await found(store, key);
        if (options.json) print(JSON.stringify(recordJson(record, true), null, 2));
        else print(details(record));
      });
    });

  withKeyOptions(
    keys
      .command('delete')
      .description('Delete one record, whatever its state: the next request with its key runs again.'),
  ).action(async (storeKey: string | undefined, options: KeyOptions) => {
    const key = storeKeyFrom(storeKey, options);
    await withStore(options.store, async (store) => {
      if (!(await store.delete(key))) throw new CliError(`no record with store key ${key}.`);
      print(`deleted ${key}: the next request with this key runs again.`);
    });
  });

  withKeyOptions(
    keys
      .command('release')
      .description(
        'Free a stuck in-progress key, so that a retry runs at once instead of waiting for its lease to end. ' +
          'Only for a holder you know is gone: if it is still running, its work will run twice.',
      ),
  ).action(async (storeKey: string | undefined, options: KeyOptions) => {
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
  });

  keys
    .command('sweep')
    .description('Delete expired records (past their retention), in batches, with a progress bar on a terminal.')
    .option('--store <url>', STORE_HELP)
    .option('--batch <n>', 'records deleted per store call (default 1000)')
    .action(async (options: { store?: string; batch?: string }) => {
      const batch = positiveInteger(options.batch ?? '1000', '--batch');
      await withStore(options.store, async (store) => {
        if (store.sweep === undefined) {
          print(`${store.name} drops expired records by itself: there is nothing to sweep.`);
          return;
        }
        const nowMs = Date.now();
        const bar = process.stdout.isTTY ? await progressBar(store, nowMs) : undefined;
        let total = 0;
        try {
          for (;;) {
            const deleted = await store.sweep(nowMs, batch);
            total += deleted;
            bar?.update(total);
            if (deleted < batch) break;
          }
        } finally {
          bar?.stop();
        }
        print(`swept ${total} expired record${total === 1 ? '' : 's'} from ${store.name}.`);
      });
    });
}

function withKeyOptions(command: Command): Command {
  return command
    .argument('[storeKey]', 'the store key, as `idem keys list` prints it')
    .option('--store <url>', STORE_HELP)
    .option('--key <key>', 'the raw key the client sent, instead of the store key')
    .option('--path <path>', 'with --key: the request path, for keys of the gateway and HTTP adapters')
    .option('--method <method>', 'with --key --path: the request method (default POST)')
    .option('--authorization <value>', 'with --key --path: the Authorization header the client sent, if any')
    .option('--scope <scope>', 'with --key: the scope, for keys of other faces (instead of --path)')
    .option('--namespace <name>', 'with --key: the namespace (default http)')
    .addHelpText('after', KEY_HELP);
}

/** The store key named on the command line; see KEY_HELP. */
function storeKeyFrom(storeKey: string | undefined, options: KeyOptions): string {
  const derived = options.key !== undefined;
  const helpers = ['scope', 'path', 'method', 'authorization', 'namespace'] as const;
  if (storeKey !== undefined && derived) throw usageError('give the store key or --key, not both.');
  if (storeKey !== undefined) {
    const stray = helpers.find((name) => options[name] !== undefined);
    if (stray !== undefined) throw usageError(`--${stray} goes with --key; a store key names the record by itself.`);
    return storeKey;
  }
  if (!derived)
    throw usageError('name a record: give its store key (from idem keys list), or --key with --path or --scope.');
  const namespace = options.namespace ?? 'http';
  if (options.scope !== undefined) {
    if (options.path !== undefined) throw usageError('give --path (HTTP keys) or --scope, not both.');
    return storeKeyOf(namespace, options.scope, options.key as string);
  }
  if (options.path === undefined) {
    throw usageError('--key needs --path (for keys the gateway stored) or --scope (for other keys).');
  }
  const path = options.path.split('?')[0] as string;
  if (!path.startsWith('/')) throw usageError(`--path ${JSON.stringify(options.path)} must start with /.`);
  // The HTTP layer's scope: method, route, and a hash of the Authorization header (or "anonymous").
  const credentials = options.authorization === undefined ? 'anonymous' : hashText(options.authorization);
  const method = (options.method ?? 'POST').toUpperCase();
  return storeKeyOf(namespace, `${method} ${path} ${credentials}`, options.key as string);
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

/** What a stored result holds, as far as it can be read without the application. */
interface ResultSummary {
  kind: 'http' | 'value' | 'error' | 'too_large' | 'sealed' | 'unreadable';
  bytes: number;
  status?: number;
  headers?: [string, string][];
  body?: string;
}

function summarize(result: Uint8Array, key: string): ResultSummary {
  let outcome: ReturnType<OutcomeCodec['decode']>;
  try {
    outcome = new OutcomeCodec(process.env.IDEM_ENCRYPTION_KEY || undefined).decode(result, key);
  } catch (error) {
    const sealed = isSealed(result) && !process.env.IDEM_ENCRYPTION_KEY;
    return {
      kind: sealed ? 'sealed' : 'unreadable',
      bytes: result.length,
      ...(sealed ? {} : { body: reasonOf(error) }),
    };
  }
  const payload = Buffer.from(outcome.payload);
  if (outcome.kind === OutcomeKind.tooLarge) return { kind: 'too_large', bytes: Number(payload.toString()) };
  if (outcome.kind === OutcomeKind.error) return { kind: 'error', bytes: payload.length, body: preview(payload) };
  // HTTP responses: a 4-byte head length, the head as JSON [status, headers], then the body.
  if (payload.length >= 4) {
    const headLength = payload.readUInt32BE(0);
    if (headLength > 0 && 4 + headLength <= payload.length) {
      try {
        const [status, headers] = JSON.parse(payload.subarray(4, 4 + headLength).toString()) as [
          number,
          [string, string][],
        ];
        if (Number.isInteger(status) && Array.isArray(headers)) {
          const body = payload.subarray(4 + headLength);
          return { kind: 'http', bytes: body.length, status, headers, body: preview(body) };
        }
      } catch {
        // Not an HTTP response: another face stored a plain value.
      }
    }
  }
  return { kind: 'value', bytes: payload.length, body: preview(payload) };
}

function preview(bytes: Buffer): string {
  const text = bytes.subarray(0, 500).toString('utf8');
  const printable = /^[\t\n\r\x20-\x7e\u00a0-\uffff]*$/.test(text);
  if (!printable) return `<${bytes.length} bytes of binary>`;
  return bytes.length > 500 ? `${text}... (${bytes.length} bytes)` : text;
}

function shortResult(record: IdempotencyRecord): string {
  if (record.result === null) return '-';
  const summary = summarize(record.result, record.key);
  switch (summary.kind) {
    case 'http': {
      const type = summary.headers?.find(([name]) => name === 'content-type')?.[1]?.split(';')[0];
      return `HTTP ${summary.status}${type ? ` ${type}` : ''}, ${summary.bytes} B`;
    }
    case 'too_large':
      return `too large to keep (${summary.bytes} B)`;
    case 'sealed':
      return `encrypted, ${summary.bytes} B`;
    default:
      return `${summary.kind}, ${summary.bytes} B`;
  }
}

function time(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

function table(records: IdempotencyRecord[]): string {
  const rows = [
    ['STORE KEY', 'STATE', 'TRIES', 'UPDATED', 'EXPIRES', 'RESULT'],
    ...records.map((record) => [
      record.key,
      record.state === 'in_progress' && record.leaseExpiresAtMs <= Date.now()
        ? 'in_progress (lease over)'
        : record.state,
      String(record.attempts),
      time(record.updatedAtMs),
      record.expiresAtMs <= Date.now() ? `${time(record.expiresAtMs)} (expired)` : time(record.expiresAtMs),
      shortResult(record),
    ]),
  ];
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] as string).length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function details(record: IdempotencyRecord): string {
  const now = Date.now();
  const lines = [
    `store key   ${record.key}`,
    `state       ${record.state}`,
    `attempts    ${record.attempts}`,
    `created     ${time(record.createdAtMs)}`,
    `updated     ${time(record.updatedAtMs)}`,
    `expires     ${time(record.expiresAtMs)} ${record.expiresAtMs <= now ? '(expired: idem keys sweep deletes it)' : `(in ${Math.round((record.expiresAtMs - now) / 1000)} s)`}`,
    `fingerprint ${record.fingerprint}`,
  ];
  if (record.state === 'in_progress') {
    const left = record.leaseExpiresAtMs - now;
    lines.push(
      `lease       ${left > 0 ? `held for ${Math.ceil(left / 1000)} s more` : 'over: the next request with this key takes it over'}`,
    );
  }
  if (record.result !== null) {
    const summary = summarize(record.result, record.key);
    if (summary.kind === 'http') {
      lines.push(`response    HTTP ${summary.status}, ${summary.bytes} bytes`);
      for (const [name, value] of summary.headers ?? []) lines.push(`            ${name}: ${value}`);
      lines.push('', summary.body ?? '');
    } else {
      lines.push(`result      ${shortResult(record)}`);
      if (summary.body) lines.push('', summary.body);
    }
  }
  return lines.join('\n');
}

function recordJson(record: IdempotencyRecord, withResult = false): Record<string, unknown> {
  const json: Record<string, unknown> = {
    key: record.key,
    state: record.state,
    attempts: record.attempts,
    createdAt: new Date(record.createdAtMs).toISOString(),
    updatedAt: new Date(record.updatedAtMs).toISOString(),
    expiresAt: new Date(record.expiresAtMs).toISOString(),
    leaseExpiresAt: new Date(record.leaseExpiresAtMs).toISOString(),
    fingerprint: record.fingerprint,
  };
  if (record.result !== null) json.result = withResult ? summarize(record.result, record.key) : shortResult(record);
  return json;
}
