/**
 * The runs index, for `runs()`: a sorted set at `<prefix>runs` whose members are the keys of
 * workflow runs, all with score 0, so ZRANGEBYLEX pages through them in key order and a cursor is
 * simply the last key a page looked at.
 *
 * On Redis Cluster the index has a slot of its own, so no script can change it together with a
 * record: the index is a hint, and the records decide. A key goes in when entry 0 of its journal
 * is appended: on a single server inside the append script, on a Cluster just before it, so a
 * crash between the two leaves a member without a run, never a run without a member. `runs()`
 * reads the record of every member it meets, lists only those that pass the runs rule, and
 * removes the members whose record is gone (from the due index too). A member whose record stands
 * without entry 0 stays (its holder may be about to append it) until its record goes.
 *
 * With `dueBy`, `runs()` reads the due index instead (`due.ts`), so that a poll for due runs does
 * not read every run kept.
 */
import type { RunListOptions, RunPage } from '../../core/journal.js';
import { checkListLimit } from '../../store-kit/index.js';
import { decodeRunsCursor, encodeRunsCursor, entryField } from './codec.js';
import type { RedisKeys } from './keys.js';
import type { RedisLike } from './redis-store.js';

/** What `runs()` needs to know of a member's record; `null` when the record is gone. */
export interface RunState {
  state: string;
  leaseExpiresAtMs: number;
  expiresAtMs: number;
  hasFirstEntry: boolean;
  /** The lease end an extend under way is lowering the run's to (its `lowering` mark, see `due.ts`). */
  loweringToMs: number | undefined;
}

/** Most index members read at once (two commands each, pipelined). */
export const MAX_BATCH = 500;

/**
 * One page of runs from the index, starting after the cursor's key. Reads on until it has one
 * run more than `limit` (so that a page gets a cursor only when a further run exists) or the
 * index ends. Without `dueBy` only: `pageDueRuns` pages through the due runs.
 */
export async function pageRuns(
  client: RedisLike,
  keys: RedisKeys,
  options: Omit<RunListOptions, 'dueBy'>,
): Promise<RunPage> {
  const limit = checkListLimit('redis', options.limit, 'runs');
  const batchSize = Math.min(Math.max(limit + 1, 100), MAX_BATCH);
  const listed: string[] = [];
  let after = options.cursor === undefined ? undefined : decodeRunsCursor(options.cursor);
  for (;;) {
    const members = await readMembers(client, keys, after, batchSize);
    const states = await Promise.all(members.map((key) => readRun(client, keys, key)));
    await Promise.all(members.filter((_, i) => states[i] === null).map((key) => forgetRun(client, keys, key)));
    for (const [i, key] of members.entries()) {
      if (!isListedRun(states[i] ?? null, undefined)) continue;
      if (listed.length === limit) return { keys: listed, nextCursor: encodeRunsCursor(listed[limit - 1] ?? key) };
      listed.push(key);
    }
    if (members.length < batchSize) return { keys: listed, nextCursor: undefined };
    after = members[members.length - 1];
  }
}

/** Up to `count` index members after `after` (from the start when `undefined`), in key order. */
async function readMembers(
  client: RedisLike,
  keys: RedisKeys,
  after: string | undefined,
  count: number,
): Promise<string[]> {
  const from = after === undefined ? '-' : `(${after}`;
  const reply = (await client.callBuffer('ZRANGEBYLEX', keys.runs, from, '+', 'LIMIT', 0, count)) as Buffer[];
  return reply.map((member) => member.toString('utf8'));
}

/** The fields of the record `key` that decide whether it is a run and whether it is due; `null` when it is gone. */
export async function readRun(client: RedisLike, keys: RedisKeys, key: string): Promise<RunState | null> {
  const record = keys.record(key);
  const [fields, hasFirstEntry] = await Promise.all([
    client.callBuffer('HMGET', record, 'state', 'leaseExpiresAtMs', 'expiresAtMs', 'lowering') as Promise<
      (Buffer | null)[]
    >,
    client.callBuffer('HEXISTS', record, entryField(0)),
  ]);
  const [state, leaseExpiresAtMs, expiresAtMs, lowering] = fields.map((field) => field?.toString('utf8'));
  if (state === undefined) return null;
  return {
    state,
    leaseExpiresAtMs: Number(leaseExpiresAtMs),
    expiresAtMs: Number(expiresAtMs),
    hasFirstEntry: hasFirstEntry === 1,
    loweringToMs: lowering === undefined ? undefined : markedLeaseMs(lowering),
  };
}

/** The lease end in a `lowering` mark, `<leaseExpiresAtMs>:<nonce>` (see `EXTEND`). */
export function markedLeaseMs(mark: string): number {
  return Number(mark.slice(0, mark.indexOf(':')));
}

/**
 * The runs rule: a record with entry 0; with `dueBy`, one a worker may take over by then (the rule
 * of `isDueRun`, on the three fields read here rather than a whole record and its result).
 */
export function isListedRun(run: RunState | null, dueBy: number | undefined): boolean {
  if (run === null || !run.hasFirstEntry) return false;
  if (dueBy === undefined) return true;
  return run.state === 'in_progress' && run.leaseExpiresAtMs <= dueBy && run.expiresAtMs > dueBy;
}

/**
 * Removes the members of a run whose record was found gone, from both indexes. The record may
 * have been claimed afresh, and its entry 0 appended, since it was read: its holder added the
 * members back before appending, and may have done so before this removal. So the record is
 * looked at again after the removal, and the members put back if the record stands (in the due
 * index with score 0: the next poll reads it and scores it by its lease).
 */
export async function forgetRun(client: RedisLike, keys: RedisKeys, key: string): Promise<void> {
  await Promise.all([client.callBuffer('ZREM', keys.runs, key), client.callBuffer('ZREM', keys.due, key)]);
  if ((await client.callBuffer('EXISTS', keys.record(key))) === 1) {
    await Promise.all([
      client.callBuffer('ZADD', keys.runs, 0, key),
      client.callBuffer('ZADD', keys.due, 'LT', 0, key),
    ]);
  }
}
