/** Reading the notification log: the journals of the store, filtered to notifications. */
import type { Engine } from '../core/engine.js';
import { ErrorCode, IdempotencyError } from '../core/errors.js';
import type { JournalStore } from '../core/journal.js';
import { StoreLimits } from '../core/store.js';
import { decodeLogEntry, type LogKind, type NotificationLogEntry } from './log-entry.js';

export interface LogQuery {
  /** Only entries for this recipient. */
  recipient?: string;
  /** Only entries for this event. */
  event?: string;
  /** Only entries for this channel name. */
  channel?: string;
  /** Only entries of this kind. */
  kind?: LogKind;
  /** The most entries on the page: 1 to 1,000. Default 100. */
  limit?: number;
  /** The previous page's `nextCursor`. */
  cursor?: string;
}

export interface LogPage {
  /** At most `limit` entries, in time order within the page. */
  entries: NotificationLogEntry[];
  /** Pass as `cursor` for the next page; undefined on the last. */
  nextCursor: string | undefined;
}

/**
 * A page of the log. The store pages through its journals in key order (a hash: no time order)
 * and cannot filter, so journals are read and filtered here; a store page never asks for more
 * keys than entries are still wanted, so the cursor a page ends with is exactly where the next
 * page goes on.
 */
export async function readLog(engine: Engine, store: JournalStore, query: LogQuery): Promise<LogPage> {
  const limit = query.limit ?? StoreLimits.defaultListLimit;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > StoreLimits.maxListLimit) {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      `[idem] log limit ${limit}: use a whole number from 1 to ${StoreLimits.maxListLimit}.`,
    );
  }
  const entries: NotificationLogEntry[] = [];
  let cursor = query.cursor;
  do {
    const page = await engine.call('runs', () =>
      store.runs({ limit: limit - entries.length, ...(cursor === undefined ? {} : { cursor }) }),
    );
    const read = await Promise.all(page.keys.map((key) => readEntry(engine, store, key)));
    for (const entry of read) if (entry !== undefined && matches(entry, query)) entries.push(entry);
    cursor = page.nextCursor;
  } while (cursor !== undefined && entries.length < limit);
  entries.sort((a, b) => a.atMs - b.atMs || rank(a) - rank(b));
  return { entries, nextCursor: cursor };
}

async function readEntry(engine: Engine, store: JournalStore, key: string): Promise<NotificationLogEntry | undefined> {
  const journal = await engine.call('entries', () => store.entries(key));
  const first = journal[0];
  return first === undefined ? undefined : decodeLogEntry(engine.codec, key, first);
}

/**
 * Order among entries of one millisecond (the store keeps no finer time): a first send comes
 * before the resends that override it, and both before the duplicates they suppressed.
 */
function rank(entry: NotificationLogEntry): number {
  if (entry.kind === 'suppressed') return 2;
  return entry.override === undefined ? 0 : 1;
}

function matches(entry: NotificationLogEntry, query: LogQuery): boolean {
  return (
    (query.recipient === undefined || entry.recipient === query.recipient) &&
    (query.event === undefined || entry.event === query.event) &&
    (query.channel === undefined || entry.channel === query.channel) &&
    (query.kind === undefined || entry.kind === query.kind)
  );
}
