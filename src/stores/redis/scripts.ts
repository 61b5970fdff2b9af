/**
 * The Lua the Redis store runs, one script per operation. Each touches exactly one record, a hash
 * at `<prefix>{<key>}`, so every script is valid on Redis Cluster. On a single server, `APPEND`
 * and `EXTEND` also keep the indexes of workflow runs in the same step (a single server allows
 * it); on a Cluster the store does it around them (`run-writes.ts`).
 *
 * The hash's fields carry the record's names: `key`, `fingerprint`, `state`, `token`,
 * `leaseExpiresAtMs`, `expiresAtMs`, `result` (absent while in progress), `createdAtMs`,
 * `updatedAtMs`, `attempts`; and, on a Cluster, `lowering` while an extend that lowers a run's
 * lease end is under way (see `due.ts`). Times are ms since the epoch as decimal strings; the
 * scripts store them exactly as ARGV gives them (Lua would print large numbers as `1.7e+12`) and
 * only parse them to compare.
 *
 * A workflow run's journal lives in its record's hash too: entry `seq` is the field `j:<seq>`
 * holding `<atMs>:<data bytes>`. So the entries share the record's slot, TTL and fate: a claim
 * over an expired record, `release`, `delete` and `sweep` drop them with it (one DEL), and no
 * script that moves the record's expiry has to move a second key's. Keys are free text and a key
 * starting with `}` gives its record no hash tag, so a separate journal key could land in another
 * slot; a field cannot.
 *
 * Expiry is judged by the caller's `nowMs`, never by Redis's clock. Redis also drops a record on
 * its own: the store passes the retention left (`expiresAtMs - nowMs`, at least 1 ms) as a
 * relative PEXPIRE, so a Redis clock that runs ahead of the application's cannot delete a record
 * early (PEXPIREAT would compare the application's absolute time with Redis's clock).
 */
import { createHash } from 'node:crypto';
import { RECORD_FIELDS } from './codec.js';
import type { RedisLike } from './redis-store.js';

/** A script and its SHA-1, for EVALSHA with a fallback to EVAL when Redis answers NOSCRIPT. */
export interface LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha1: string;
}

/** A script named `name` (in errors) with its SHA-1, for `runScript`. */
export function script(name: string, source: string): LuaScript {
  return { name, source, sha1: createHash('sha1').update(source).digest('hex') };
}

/**
 * Runs `script` with `keys` as KEYS and `args` as ARGV: EVALSHA, then EVAL when Redis has
 * forgotten the script (restart, failover, SCRIPT FLUSH), which also caches it again.
 */
export async function runScript(
  client: RedisLike,
  script: LuaScript,
  keys: string[],
  args: (string | Buffer)[],
): Promise<unknown> {
  try {
    return await client.callBuffer('EVALSHA', script.sha1, keys.length, ...keys, ...args);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
      return client.callBuffer('EVAL', script.source, keys.length, ...keys, ...args);
    }
    throw error;
  }
}

/** Lua: the record's fields as HMGET gives them, for `decodeRecord`. */
const READ_RECORD = `redis.call('HMGET', KEYS[1], ${RECORD_FIELDS.map((field) => `'${field}'`).join(', ')})`;

/** The Lua (1-based) index of `field` in the reply of `READ_RECORD`. */
function at(field: (typeof RECORD_FIELDS)[number]): number {
  return RECORD_FIELDS.indexOf(field) + 1;
}

/** Lua: `clearJournal(hash)` deletes every journal entry (`j:<seq>` field) of the record `hash`. */
const CLEAR_JOURNAL = `local function clearJournal(hash)
  for _, field in ipairs(redis.call('HKEYS', hash)) do
    if string.sub(field, 1, 2) == 'j:' then
      redis.call('HDEL', hash, field)
    end
  end
end`;

/**
 * Lua: `lowersRun(hash, leaseExpiresAtMs, current)` tells whether setting this lease end lowers
 * the lease end of a workflow run (a record with entry 0), given its current `leaseExpiresAtMs`:
 * the due index must then come down with it (see `due.ts`).
 */
const LOWERS_RUN = `local function lowersRun(hash, leaseExpiresAtMs, current)
  local currentMs = tonumber(current)
  return currentMs ~= nil and tonumber(leaseExpiresAtMs) < currentMs and redis.call('HEXISTS', hash, 'j:0') == 1
end`;

/** Lua: `clearMark(hash, mark)` removes the record's `lowering` field if it is still `mark`. */
const CLEAR_MARK = `local function clearMark(hash, mark)
  if redis.call('HGET', hash, 'lowering') == mark then
    redis.call('HDEL', hash, 'lowering')
  end
end`;

/**
 * claim: atomically claims a record.
 * KEYS[1] the record's hash
 * ARGV[1] key, ARGV[2] fingerprint, ARGV[3] token, ARGV[4] nowMs, ARGV[5] leaseExpiresAtMs,
 * ARGV[6] expiresAtMs, ARGV[7] retention left in ms (for PEXPIRE)
 * Returns:
 * - `{1}` a fresh record was written (there was none, or it had expired, and with it its journal):
 *   the caller's input is the record;
 * - `{2, createdAtMs, attempts}` the in-progress record's lease had ended and the fingerprint matched:
 *   taken over with the new token, lease and retention (a run's journal kept, for the new holder);
 * - `{0, {value, ...}}` the current record, unchanged: its fields in `RECORD_FIELDS` order.
 */
export const CLAIM = script(
  'claim',
  `local now = tonumber(ARGV[4])
local current = ${READ_RECORD}
local expiresAtMs = tonumber(current[${at('expiresAtMs')}])
if expiresAtMs == nil or expiresAtMs <= now then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'key', ARGV[1], 'fingerprint', ARGV[2], 'state', 'in_progress', 'token', ARGV[3],
    'leaseExpiresAtMs', ARGV[5], 'expiresAtMs', ARGV[6], 'createdAtMs', ARGV[4], 'updatedAtMs', ARGV[4],
    'attempts', '1')
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  return {1}
end
local leaseExpiresAtMs = tonumber(current[${at('leaseExpiresAtMs')}])
if current[${at('state')}] == 'in_progress' and leaseExpiresAtMs ~= nil and leaseExpiresAtMs <= now
  and current[${at('fingerprint')}] == ARGV[2] then
  redis.call('HSET', KEYS[1], 'token', ARGV[3], 'leaseExpiresAtMs', ARGV[5], 'expiresAtMs', ARGV[6],
    'updatedAtMs', ARGV[4])
  local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  return {2, current[${at('createdAtMs')}], attempts}
end
return {0, current}
`,
);

/**
 * complete: stores the result and marks the record completed, only if it is in progress with the token.
 * KEYS[1] the record's hash
 * ARGV[1] token, ARGV[2] result bytes, ARGV[3] nowMs, ARGV[4] expiresAtMs, ARGV[5] retention left in ms
 * Returns: 1 when stored, 0 when the token no longer holds (nothing changed).
 */
export const COMPLETE = script(
  'complete',
  `local current = redis.call('HMGET', KEYS[1], 'state', 'token')
if current[1] ~= 'in_progress' or current[2] ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'completed', 'result', ARGV[2], 'expiresAtMs', ARGV[4], 'updatedAtMs', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`,
);

/**
 * release: deletes the record, only if it is in progress with the token.
 * KEYS[1] the record's hash
 * ARGV[1] token
 * Returns: 1 when deleted, 0 when the token no longer holds (nothing changed).
 */
export const RELEASE = script(
  'release',
  `local current = redis.call('HMGET', KEYS[1], 'state', 'token')
if current[1] ~= 'in_progress' or current[2] ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
`,
);

/**
 * Lua: `extendRecord(hash, nowMs, leaseExpiresAtMs, expiresAtMs, retentionLeftMs, currentExpiresAtMs)`
 * moves the lease end and raises the retention end (never lowers it; the rule of `extendedRecord`).
 * When retention is raised, so is the key's TTL, or Redis would drop the record under a holder
 * whose work outlives it.
 */
const EXTEND_RECORD = `local function extendRecord(hash, nowMs, leaseExpiresAtMs, expiresAtMs, retentionLeftMs, currentExpiresAtMs)
  redis.call('HSET', hash, 'leaseExpiresAtMs', leaseExpiresAtMs, 'updatedAtMs', nowMs)
  local currentMs = tonumber(currentExpiresAtMs)
  if currentMs == nil or tonumber(expiresAtMs) > currentMs then
    redis.call('HSET', hash, 'expiresAtMs', expiresAtMs)
    redis.call('PEXPIRE', hash, retentionLeftMs)
  end
end`;

/**
 * extend: moves the lease end and raises the retention end (`extendRecord`), only if the record
 * is in progress with the token. When it lowers a workflow run's lease end, the due index must
 * come down too (see `due.ts`): on a single server in the same step; on a Cluster nothing is
 * changed yet: the record is marked (`lowering` = ARGV[7]) and the store lowers the index, then
 * runs `EXTEND_MARKED`.
 * KEYS[1] the record's hash; KEYS[2] (single server) the due index
 * ARGV[1] token, ARGV[2] nowMs, ARGV[3] leaseExpiresAtMs, ARGV[4] expiresAtMs (least retention
 * end), ARGV[5] retention left in ms until ARGV[4] (for PEXPIRE), ARGV[6] key (the index member),
 * ARGV[7] (Cluster) the mark, `<leaseExpiresAtMs>:<nonce>`
 * Returns: 1 when moved, 0 when the token no longer holds (nothing changed), 2 (Cluster) when
 * marked, nothing else changed.
 */
export const EXTEND = script(
  'extend',
  `${LOWERS_RUN}
${EXTEND_RECORD}
local current = redis.call('HMGET', KEYS[1], 'state', 'token', 'expiresAtMs', 'leaseExpiresAtMs')
if current[1] ~= 'in_progress' or current[2] ~= ARGV[1] then
  return 0
end
if lowersRun(KEYS[1], ARGV[3], current[4]) then
  if not KEYS[2] then
    redis.call('HSET', KEYS[1], 'lowering', ARGV[7])
    return 2
  end
  redis.call('ZADD', KEYS[2], 'LT', ARGV[3], ARGV[6])
end
extendRecord(KEYS[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], current[3])
return 1
`,
);

/**
 * extend-marked (Cluster): the second half of an extend that `EXTEND` marked, once the store has
 * lowered the due index: removes the mark if it is still this one, then extends as `EXTEND`
 * does, only if the record is in progress with the token.
 * KEYS[1] the record's hash
 * ARGV[1] to ARGV[5] as `EXTEND`'s, ARGV[6] the mark `EXTEND` set
 * Returns: 1 when moved, 0 when the token no longer holds (nothing changed but the mark).
 */
export const EXTEND_MARKED = script(
  'extend-marked',
  `${CLEAR_MARK}
${EXTEND_RECORD}
clearMark(KEYS[1], ARGV[6])
local current = redis.call('HMGET', KEYS[1], 'state', 'token', 'expiresAtMs')
if current[1] ~= 'in_progress' or current[2] ~= ARGV[1] then
  return 0
end
extendRecord(KEYS[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], current[3])
return 1
`,
);

/**
 * sweep-one: deletes a record found by SCAN if it has expired. Checked again here because the
 * record may have been claimed afresh between the SCAN and this call.
 * KEYS[1] the record's hash
 * ARGV[1] nowMs
 * Returns: 1 when deleted, 0 when it is still live or already gone.
 */
export const SWEEP_ONE = script(
  'sweep-one',
  `local expiresAtMs = tonumber(redis.call('HGET', KEYS[1], 'expiresAtMs'))
if expiresAtMs == nil or expiresAtMs > tonumber(ARGV[1]) then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
`,
);

/**
 * append: writes entry `seq` of a run's journal, fenced by the holder's token: only if the record
 * is in progress with the token and has not expired by nowMs (`mayAppend`), and, for a `seq`
 * other than 0, has no entry `seq`. Entry 0 starts the journal afresh (every entry the key had
 * goes) and, on a single server, puts the key in the runs index and in the due index (scored by
 * its lease end) in the same step. On Redis Cluster the indexes are in other slots: the store adds
 * the key to them just before this script instead.
 * KEYS[1] the record's hash; KEYS[2], KEYS[3] (single server, seq 0 only) the runs and due indexes
 * ARGV[1] token, ARGV[2] seq (decimal), ARGV[3] nowMs, ARGV[4] data bytes, ARGV[5] key (the index member)
 * Returns: 1 when written, 0 when refused (nothing changed).
 */
export const APPEND = script(
  'append',
  `${CLEAR_JOURNAL}
local current = redis.call('HMGET', KEYS[1], 'state', 'token', 'expiresAtMs', 'leaseExpiresAtMs')
local expiresAtMs = tonumber(current[3])
if current[1] ~= 'in_progress' or current[2] ~= ARGV[1] or expiresAtMs == nil or expiresAtMs <= tonumber(ARGV[3]) then
  return 0
end
local field = 'j:' .. ARGV[2]
if ARGV[2] == '0' then
  clearJournal(KEYS[1])
  if KEYS[2] then
    redis.call('ZADD', KEYS[2], 0, ARGV[5])
    redis.call('ZADD', KEYS[3], current[4], ARGV[5])
  end
elseif redis.call('HEXISTS', KEYS[1], field) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], field, ARGV[3] .. ':' .. ARGV[4])
return 1
`,
);

/**
 * reopen: turns a completed record back into an in-progress one to run it again from the start,
 * only if it holds the expected token and has not expired by nowMs (`mayReopen`): new token,
 * lease and retention, no result, attempts + 1, its journal removed (createdAtMs and fingerprint
 * kept: `reopenedRecord`). A `lowering` mark left by an extend that never finished goes too: no
 * extend under the old token can apply any more. The record is no run until its entry 0 is
 * appended again, and that append puts it back in the indexes.
 * KEYS[1] the record's hash
 * ARGV[1] expected token, ARGV[2] new token, ARGV[3] nowMs, ARGV[4] leaseExpiresAtMs,
 * ARGV[5] expiresAtMs, ARGV[6] retention left in ms (for PEXPIRE)
 * Returns: 1 when reopened, 0 when refused (nothing changed).
 */
export const REOPEN = script(
  'reopen',
  `${CLEAR_JOURNAL}
local current = redis.call('HMGET', KEYS[1], 'state', 'token', 'expiresAtMs')
local expiresAtMs = tonumber(current[3])
if current[1] ~= 'completed' or current[2] ~= ARGV[1] or expiresAtMs == nil or expiresAtMs <= tonumber(ARGV[3]) then
  return 0
end
clearJournal(KEYS[1])
redis.call('HDEL', KEYS[1], 'result', 'lowering')
redis.call('HSET', KEYS[1], 'state', 'in_progress', 'token', ARGV[2], 'leaseExpiresAtMs', ARGV[4],
  'expiresAtMs', ARGV[5], 'updatedAtMs', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
`,
);
