/**
 * The store's writes that keep the indexes of workflow runs right (`runs.ts`, `due.ts`): `append`
 * (entry 0 puts a run in both) and `extend` (a lease end that comes down brings the due score down
 * first). On a single server the scripts do it in the same atomic step; on Redis Cluster the
 * indexes are in other slots than the record, so the store does it around the scripts, in the
 * order that never leaves a run missing from an index or scored after its lease end.
 */
import { randomUUID } from 'node:crypto';
import type { AppendInput } from '../../core/journal.js';
import type { ExtendInput } from '../../core/store.js';
import { asBuffer } from '../../store-kit/index.js';
import type { RedisKeys } from './keys.js';
import type { RedisLike } from './redis-store.js';
import { APPEND, EXTEND, EXTEND_MARKED, runScript } from './scripts.js';

/** True on Redis Cluster: keys of different slots cannot meet in one script. */
function isCluster(client: RedisLike): boolean {
  return client.nodes !== undefined;
}

/** Appends the entry (`APPEND`); entry 0 puts the run in both indexes. True when written. */
export async function appendEntry(client: RedisLike, keys: RedisKeys, input: AppendInput): Promise<boolean> {
  const start = input.seq === 0;
  // On a Cluster the keys go in first, so that no crash can leave a run an index does not name.
  // Scored 0 in the due index: its lease end is not known here, and the next poll scores it.
  if (start && isCluster(client)) {
    await Promise.all([
      client.callBuffer('ZADD', keys.runs, 0, input.key),
      client.callBuffer('ZADD', keys.due, 0, input.key),
    ]);
  }
  const indexes = start && !isCluster(client) ? [keys.runs, keys.due] : [];
  const reply = await runScript(
    client,
    APPEND,
    [keys.record(input.key), ...indexes],
    [input.token, String(input.seq), String(input.nowMs), asBuffer(input.data), input.key],
  );
  return reply === 1;
}

/**
 * Extends the lease (`EXTEND`). On a Cluster, when that lowers a run's lease end, `EXTEND` only
 * marks the record: the due score comes down, then `EXTEND_MARKED` extends (see `due.ts` for why
 * the mark comes first). True when extended.
 */
export async function extendLease(
  client: RedisLike,
  keys: RedisKeys,
  input: ExtendInput,
  retentionLeftMs: string,
): Promise<boolean> {
  const record = keys.record(input.key);
  const args = [
    input.token,
    String(input.nowMs),
    String(input.leaseExpiresAtMs),
    String(input.expiresAtMs),
    retentionLeftMs,
  ];
  if (!isCluster(client)) return (await runScript(client, EXTEND, [record, keys.due], [...args, input.key])) === 1;
  const mark = `${String(input.leaseExpiresAtMs)}:${randomUUID()}`;
  const reply = await runScript(client, EXTEND, [record], [...args, input.key, mark]);
  if (reply !== 2) return reply === 1;
  await client.callBuffer('ZADD', keys.due, 'LT', String(input.leaseExpiresAtMs), input.key);
  return (await runScript(client, EXTEND_MARKED, [record], [...args, mark])) === 1;
}
