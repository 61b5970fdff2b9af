/**
 * The Lua the Redis store runs, one script per operation. Each touches exactly one record, a hash
 * at `<prefix>{<key>}`, so every script is valid on Redis Cluster (only `APPEND` on a single
 * server also touches the runs index, which a single server allows).
 *
 * The hash's fields carry the record's names: `key`, `fingerprint`, `state`, `token`,
 * `leaseExpiresAtMs`, `expiresAtMs`, `result` (absent while in progress), `createdAtMs`,
 * `updatedAtMs`, `attempts`. Times are ms since the epoch as decimal strings; the scripts store
 * them exactly as ARGV gives them (Lua would print large numbers as `1.7e+12`) and only parse
 * them to compare.
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

function script(name: string, source: string): LuaScript {
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

/** Lua: `clearJournal(hash)` deletes every journal entry (`j:<seq>` field) of the record `hash`. */
const CLEAR_JOURNAL = `local function clearJournal(hash)
  for _, field in ipairs(redis.call('HKEYS', hash)) do
    if string.sub(field, 1, 2) == 'j:' then
      redis.call('HDEL', hash, field)
    end
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
local current = redis.call('HMGET', KEYS[1], 'state', 'fingerprint', 'leaseExpiresAtMs', 'expiresAtMs')
local expiresAtMs = tonumber(current[4])
if expiresAtMs == nil or expiresAtMs <= now then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'key', ARGV[1], 'fingerprint', ARGV[2], 'state', 'in_progress', 'token', ARGV[3],
    'leaseExpiresAtMs', ARGV[5], 'expiresAtMs', ARGV[6], 'createdAtMs', ARGV[4], 'updatedAtMs', ARGV[4],
    'attempts', '1')
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  return {1}
end
local leaseExpiresAtMs = tonumber(current[3])
if current[1] == 'in_progress' and leaseExpiresAtMs ~= nil and leaseExpiresAtMs <= now and current[2] == ARGV[2] then
  redis.call('HSET', KEYS[1], 'token', ARGV[3], 'leaseExpiresAtMs', ARGV[5], 'expiresAtMs', ARGV[6],
    'updatedAtMs', ARGV[4])
  local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  return {2, redis.call('HGET', KEYS[1], 'createdAtMs'), attempts}
end
return {0, ${READ_RECORD}}
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
 * extend: moves the lease end and raises the retention end (never lowers it; the rule of
 * `extendedRecord`), only if the record is in progress with the token. When retention is raised,
 * so is the key's TTL, or Redis would drop the record under a holder whose work outlives it.
 * KEYS[1] the record's hash
 * ARGV[1] token, ARGV[2] nowMs, ARGV[3] leaseExpiresAtMs, ARGV[4] expiresAtMs (least retention
 * end), ARGV[5] retention left in ms until ARGV[4] (for PEXPIRE)
 * Returns: 1 when moved, 0 when the token no longer holds (nothing changed).
 */
export const EXTEND = script(
  'extend',
  `local current = redis.call('HMGET', KEYS[1], 'state', 'token', 'expiresAtMs')
if current[1] ~= 'in_progress' or current[2] ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'leaseExpiresAtMs', ARGV[3], 'updatedAtMs', ARGV[2])
local expiresAtMs = tonumber(current[3])
if expiresAtMs == nil or tonumber(ARGV[4]) > expiresAtMs then
  redis.call('HSET', KEYS[1], 'expiresAtMs', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
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
 * other than 0, has no entry `seq`. Entry 0 starts the journal afresh (every entry the key had goes) and, on a
 * single server, puts the key in the runs index in the same step. On Redis Cluster the index is
 * in another slot: the store adds the key to it just before this script instead.
 * KEYS[1] the record's hash; KEYS[2] (single server, seq 0 only) the runs index
 * ARGV[1] token, ARGV[2] seq (decimal), ARGV[3] nowMs, ARGV[4] data bytes, ARGV[5] key (the index member)
 * Returns: 1 when written, 0 when refused (nothing changed).
 */
export const APPEND = script(
  'append',
  `${CLEAR_JOURNAL}
local current = redis.call('HMGET', KEYS[1], 'state', 'token', 'expiresAtMs')
local expiresAtMs = tonumber(current[3])
if current[1] ~= 'in_progress' or current[2] ~= ARGV[1] or expiresAtMs == nil or expiresAtMs <= tonumber(ARGV[3]) then
  return 0
end
local field = 'j:' .. ARGV[2]
if ARGV[2] == '0' then
  clearJournal(KEYS[1])
  if KEYS[2] then
    redis.call('ZADD', KEYS[2], 0, ARGV[5])
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
 * kept: `reopenedRecord`).
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
redis.call('HDEL', KEYS[1], 'result')
redis.call('HSET', KEYS[1], 'state', 'in_progress', 'token', ARGV[2], 'leaseExpiresAtMs', ARGV[4],
  'expiresAtMs', ARGV[5], 'updatedAtMs', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
`,
);
