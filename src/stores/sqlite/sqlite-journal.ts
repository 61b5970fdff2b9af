/**
 * The SQLite store's journal (the `JournalStore` half of `SqliteStore`): its statements prepared
 * once per connection, and the operations over them. The table, its index of runs and the trigger
 * that deletes a record's entries with the record are in `migrations.ts`.
 */
import type { AppendInput, JournalEntry, ReopenInput, RunPage } from '../../core/journal.js';
import type { SqlInteger } from '../../store-kit/index.js';
import * as sql from './sql.js';
import type { SqliteDatabaseLike } from './sqlite-store.js';

interface EntryRow {
  seq: SqlInteger;
  data: Uint8Array;
  at_ms: SqlInteger;
}

/** What `runs` reads a page with, besides the limit. */
export interface RunQuery {
  dueBy: number | null;
  cursor: string | undefined;
  /** Rows to fetch: the page's limit plus one, to learn whether another page follows. */
  limit: number;
}

export interface PreparedJournal {
  append(input: AppendInput): boolean;
  entries(key: string): JournalEntry[];
  reopen(input: ReopenInput): boolean;
  /** Up to `query.limit` run keys, in key order. */
  runKeys(query: RunQuery): string[];
}

/** Prepares the journal's statements on `db`, whose migration has run. */
export function prepareJournal(db: SqliteDatabaseLike, table: string): PreparedJournal {
  const appendEntry = db.prepare(sql.appendEntry(table));
  const clearFenced = db.prepare(sql.clearFencedJournal(table));
  const selectEntries = db.prepare(sql.selectEntries(table));
  const reopenRecord = db.prepare(sql.reopenRecord(table));
  const clearJournal = db.prepare(sql.clearJournal(table));
  const runsFirst = db.prepare(sql.runsFirstPage(table));
  const runsNext = db.prepare(sql.runsNextPage(table));

  // Seq 0 starts the journal afresh: the fenced delete and the insert run under one write lock,
  // so no other process appends between them, and a refused append removes nothing.
  const appendFirst = db.transaction((input: AppendInput): boolean => {
    clearFenced.run({ key: input.key, token: input.token, nowMs: input.nowMs });
    return appendEntry.run(appendParams(input)).changes === 1;
  });
  const reopen = db.transaction((input: ReopenInput): boolean => {
    const reopened = reopenRecord.run({
      token: input.token,
      leaseExpiresAtMs: input.leaseExpiresAtMs,
      expiresAtMs: input.expiresAtMs,
      nowMs: input.nowMs,
      key: input.key,
      expectedToken: input.expectedToken,
    });
    if (reopened.changes !== 1) return false;
    clearJournal.run(input.key);
    return true;
  });

  return {
    // Any other seq is one statement, atomic on its own: no transaction to pay for.
    append: (input) =>
      input.seq === 0 ? appendFirst.immediate(input) : appendEntry.run(appendParams(input)).changes === 1,
    entries: (key) =>
      (selectEntries.all(key) as EntryRow[]).map((row) => ({
        seq: Number(row.seq),
        data: row.data,
        atMs: Number(row.at_ms),
      })),
    reopen: (input) => reopen.immediate(input),
    runKeys: ({ dueBy, cursor, limit }) => {
      const rows = (
        cursor === undefined ? runsFirst.all({ dueBy, limit }) : runsNext.all({ dueBy, limit, cursor })
      ) as { key: string }[];
      return rows.map((row) => row.key);
    },
  };
}

/** One page of `runs` from keys fetched with a limit of `limit + 1` (see `pageOf`). */
export function runPageOf(keys: string[], limit: number): RunPage {
  const page = keys.slice(0, limit);
  return { keys: page, nextCursor: keys.length > limit ? page.at(-1) : undefined };
}

function appendParams(input: AppendInput): Record<string, unknown> {
  return { key: input.key, seq: input.seq, data: input.data, nowMs: input.nowMs, token: input.token };
}
