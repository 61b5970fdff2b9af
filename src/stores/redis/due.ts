/**
 * The due index, for `runs({ dueBy })`: a sorted set at `<prefix>due` whose members are the keys of
 * workflow runs, each scored by a lower bound of its lease end. A run due by `dueBy` has its lease
 * end, so its score, at most `dueBy`: a poll reads only the members scored up to then, and checks
 * their records. What it learns it writes back, so that it does not read the same member again
 * for nothing: a completed run leaves the index, a run whose lease was extended (heartbeat, sleep,
 * parked) is scored by its lease end and not read again until then. An idle poll reads the index
 * and nothing else, however many runs are kept.
 *
 * As for the runs index, the index is a hint and the records decide; on Redis Cluster it has a
 * slot of its own, so no script can change it together with a record. What keeps every run in
 * progress in the index, scored at most its lease end:
 *
 * - **In.** A key goes in when entry 0 of its journal is appended: on a single server inside the
 *   append script, scored by the lease end; on a Cluster just before it (the lease end is not
 *   known there), scored 0, so the next poll reads it and scores it.
 * - **Later lease ends** (a heartbeat, a takeover, a sleep past the lease) need nothing: the old
 *   score is still a lower bound.
 * - **Earlier lease ends** (`resume` and `cancel` cut a parked or sleeping run's lease, a sleep
 *   shorter than the lease, a run handed back) bring the score down first. On a single server in
 *   the extend script. On a Cluster in three steps: the extend script only marks the record
 *   (field `lowering`: the new lease end and a nonce), the store lowers the score (ZADD LT), then
 *   `EXTEND_MARKED` extends and removes the mark. A crash after the lowering leaves a score lower
 *   than needed: harmless.
 * - **Raising a score** (a poll): only to a lease end it read, then the record is read again; if
 *   its lease end came down meanwhile, or a mark appeared, the score is brought back down. Timeline
 *   of the race this closes, on a Cluster: a poll reads the lease end L; `resume` marks the record
 *   and lowers the score to now; the poll raises it to L; `resume` cuts the lease. The poll's
 *   second read comes after its raise, so after the mark: it sees the mark, or the cut lease, and
 *   lowers the score again. Without the mark it could read L once more, just before the cut.
 *   A record with a mark, or without entry 0 yet (its append will score it), is not raised.
 * - **Removal.** A member whose record is completed or gone is removed, then the record is read
 *   again: if it is in progress by then, the member goes back with score 0. A completed run becomes
 *   one again only by `reopen`, which removes its journal, and by a new entry 0, whose append puts
 *   it back after the reopen; a gone record comes back only by a claim, before its append (the rule
 *   of `forgetRun`).
 *
 * What a crash between two steps can leave costs reads, never a missed run: a member without a
 * run (read by each poll until its record goes), or a mark (the run is read by each poll and not
 * raised, until a later lowering, a `reopen` or a fresh claim removes the mark).
 */
import type { RunPage } from '../../core/journal.js';
import { type DuePosition, decodeDueCursor, encodeDueCursor } from './codec.js';
import type { RedisKeys } from './keys.js';
import type { RedisLike } from './redis-store.js';
import { forgetRun, isListedRun, MAX_BATCH, type RunState, readRun } from './runs.js';

/** What a poll does with a member it read: list it, leave it, raise its score, remove it. */
type Verdict = 'due' | 'keep' | 'raise' | 'drop' | 'forget';

/**
 * One page of the runs due by `dueBy`, from the members of the due index scored up to then,
 * starting after the cursor's member. Reads on until it has one run more than `limit` (so that a
 * page gets a cursor only when a further run exists) or no member is left.
 */
export async function pageDueRuns(
  client: RedisLike,
  keys: RedisKeys,
  dueBy: number,
  limit: number,
  cursor: string | undefined,
): Promise<RunPage> {
  const batchSize = Math.min(Math.max(limit + 1, 100), MAX_BATCH);
  const listed: DuePosition[] = [];
  let after = cursor === undefined ? undefined : decodeDueCursor(cursor);
  for (;;) {
    const { members, more } = await readMembers(client, keys, after, dueBy, batchSize);
    const runs = await Promise.all(members.map((member) => readRun(client, keys, member.key)));
    await Promise.all(members.map((member, i) => tidy(client, keys, member, runs[i] ?? null, dueBy)));
    for (const [i, member] of members.entries()) {
      if (!isListedRun(runs[i] ?? null, dueBy)) continue;
      if (listed.length === limit) {
        return { keys: listed.map((run) => run.key), nextCursor: encodeDueCursor(listed[limit - 1] ?? member) };
      }
      listed.push(member);
    }
    if (!more) return { keys: listed.map((run) => run.key), nextCursor: undefined };
    after = members.at(-1) ?? after;
  }
}

/**
 * Up to `count` members scored at most `dueBy`, after `after` in the index's order (score, then
 * key bytes); `more` when the index may hold further ones. ZRANGEBYSCORE cannot start after a
 * member, only at a score: the members at the cursor's score up to its key are skipped here, and
 * when a whole batch is such members (many share a score: 0 on a Cluster) the next batch is read.
 */
async function readMembers(
  client: RedisLike,
  keys: RedisKeys,
  after: DuePosition | undefined,
  dueBy: number,
  count: number,
): Promise<{ members: DuePosition[]; more: boolean }> {
  const from = after === undefined ? '-inf' : String(after.score);
  const afterKey = after === undefined ? undefined : Buffer.from(after.key, 'utf8');
  for (let offset = 0; ; offset += count) {
    const reply = (await client.callBuffer(
      'ZRANGEBYSCORE',
      keys.due,
      from,
      String(dueBy),
      'WITHSCORES',
      'LIMIT',
      offset,
      count,
    )) as Buffer[];
    const members: DuePosition[] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) {
      const [member, score] = [reply[i] as Buffer, Number((reply[i + 1] as Buffer).toString('utf8'))];
      if (after !== undefined && afterKey !== undefined && isAtOrBefore(score, member, after.score, afterKey)) continue;
      members.push({ key: member.toString('utf8'), score });
    }
    const more = reply.length === 2 * count;
    if (members.length > 0 || !more) return { members, more };
  }
}

/** Whether the member (score, key) comes no later than the cursor's in the index's order. */
function isAtOrBefore(score: number, key: Buffer, afterScore: number, afterKey: Buffer): boolean {
  return score < afterScore || (score === afterScore && Buffer.compare(key, afterKey) <= 0);
}

/** The rules above, for a member whose record was read as `run`. */
function verdictOf(run: RunState | null, dueBy: number): Verdict {
  if (run === null) return 'forget';
  if (run.state !== 'in_progress') return 'drop';
  if (isListedRun(run, dueBy)) return 'due';
  if (!run.hasFirstEntry || run.loweringToMs !== undefined) return 'keep';
  // A lease ended on an expired record: Redis drops the record soon, and the member after it.
  return run.leaseExpiresAtMs > dueBy ? 'raise' : 'keep';
}

/** Writes back what the poll learnt of one member (see the rules above). */
async function tidy(
  client: RedisLike,
  keys: RedisKeys,
  member: DuePosition,
  run: RunState | null,
  dueBy: number,
): Promise<void> {
  switch (verdictOf(run, dueBy)) {
    case 'forget':
      return forgetRun(client, keys, member.key);
    case 'drop':
      return dropMember(client, keys, member.key);
    case 'raise':
      return raiseScore(client, keys, member.key, run?.leaseExpiresAtMs ?? member.score);
    default:
  }
}

/** Removes the member of a completed run, and puts it back if its record is in progress again since. */
async function dropMember(client: RedisLike, keys: RedisKeys, key: string): Promise<void> {
  await client.callBuffer('ZREM', keys.due, key);
  const state = (await client.callBuffer('HGET', keys.record(key), 'state')) as Buffer | null;
  if (state?.toString('utf8') === 'in_progress') {
    await client.callBuffer('ZADD', keys.due, 'LT', 0, key);
  }
}

/**
 * Raises the member's score to the lease end `leaseExpiresAtMs` its record had when read (never
 * lowers it: another poll may have raised it further), then reads the record again and brings the
 * score down to the lease end it has now, or the one a mark is lowering it to, when that is lower.
 */
async function raiseScore(client: RedisLike, keys: RedisKeys, key: string, leaseExpiresAtMs: number): Promise<void> {
  await client.callBuffer('ZADD', keys.due, 'XX', 'GT', String(leaseExpiresAtMs), key);
  const run = await readRun(client, keys, key);
  if (run === null) return;
  const floorMs = Math.min(
    run.state === 'in_progress' ? run.leaseExpiresAtMs : Number.POSITIVE_INFINITY,
    run.loweringToMs ?? Number.POSITIVE_INFINITY,
  );
  if (floorMs < leaseExpiresAtMs) await client.callBuffer('ZADD', keys.due, 'XX', 'LT', String(floorMs), key);
}
