/** `idem notifications log`: a page of the notification log, as a table or JSON lines. */
import type { LogKind, LogPage, LogQuery, NotificationLogEntry } from '../../notify/index.js';
import { Notifier } from '../../notify/notifier.js';
import { usageError } from '../cli-error.js';
import { encryptionKeysFromEnv } from '../encryption-env.js';
import { columns } from '../text-table.js';
import { print, wholeNumber } from '../workflows/list-runs.js';
import { cliErrorOf, openJournalStore } from '../workflows/open-workflows.js';

export interface LogOptions {
  store?: string;
  recipient?: string;
  event?: string;
  channel?: string;
  kind?: string;
  limit?: string;
  cursor?: string;
  json?: boolean;
}

const KINDS = ['sent', 'failed', 'suppressed'] as const;

export async function notificationsLog(options: LogOptions): Promise<void> {
  const query = queryOf(options);
  const { store, spec } = await openJournalStore(options.store);
  try {
    const keys = encryptionKeysFromEnv();
    const notifier = new Notifier({ store, ...(keys === undefined ? {} : { encryptionKey: keys }) });
    const page = await notifier.log(query);
    if (options.json) printJson(page);
    else printTable(page);
  } catch (error) {
    throw cliErrorOf(error, spec);
  } finally {
    await store.close();
  }
}

/** The log query the flags ask for; a bad flag is a usage mistake. */
function queryOf(options: LogOptions): LogQuery {
  const kind = kindOf(options.kind);
  const query: LogQuery = { limit: wholeNumber(options.limit ?? '100', '--limit') };
  if (options.recipient !== undefined) query.recipient = options.recipient;
  if (options.event !== undefined) query.event = options.event;
  if (options.channel !== undefined) query.channel = options.channel;
  if (kind !== undefined) query.kind = kind;
  if (options.cursor !== undefined) query.cursor = options.cursor;
  return query;
}

/** One JSON object per entry, then `{ nextCursor }` when there are more. */
function printJson(page: LogPage): void {
  for (const entry of page.entries) print(JSON.stringify(entry));
  if (page.nextCursor !== undefined) print(JSON.stringify({ nextCursor: page.nextCursor }));
}

function printTable(page: LogPage): void {
  print(page.entries.length === 0 ? 'no notifications logged.' : table(page.entries));
  if (page.nextCursor !== undefined) print(`\nmore: idem notifications log --cursor ${page.nextCursor}`);
}

function table(entries: NotificationLogEntry[]): string {
  const rows = entries.map((entry) => [
    new Date(entry.atMs).toISOString(),
    entry.kind,
    entry.channel,
    entry.recipient,
    entry.event,
    entry.messageId ?? '-',
    why(entry),
  ]);
  return columns([['time', 'kind', 'channel', 'recipient', 'event', 'message id', 'why'], ...rows]);
}

function why(entry: NotificationLogEntry): string {
  if (entry.override !== undefined) return `override: ${entry.override.reason}`;
  if (entry.because !== undefined) return entry.because;
  if (entry.error !== undefined) return entry.error;
  return (entry.attempt ?? 1) > 1 ? `attempt ${entry.attempt}` : '';
}

function kindOf(kind: string | undefined): LogKind | undefined {
  if (kind === undefined) return undefined;
  if ((KINDS as readonly string[]).includes(kind)) return kind as LogKind;
  throw usageError(`--kind ${JSON.stringify(kind)}: use one of ${KINDS.join(', ')}.`);
}
