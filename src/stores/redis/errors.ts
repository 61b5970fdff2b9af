/**
 * Which Redis replies are configuration mistakes rather than outages, by the error prefix of the
 * reply, and what to fix for each.
 */
import type { MisconfigurationAdvice } from '../../store-kit/index.js';

const ADVICE: [RegExp, string][] = [
  [/^NOAUTH\b/, 'the server requires a password: put it in the store URL (redis://:password@host:6379)'],
  [/^WRONGPASS\b/, 'check the user and password in the store URL'],
  [
    // A command refused inside a script comes back as ERR, not NOPERM: the same mistake.
    /^(NOPERM\b|ERR The user executing the script can't run this command)/,
    "grant the store's user the commands it runs (EVALSHA, EVAL, HMGET, HGETALL, HEXISTS, DEL, EXISTS, SCAN, ZADD, ZREM, ZRANGEBYLEX, PING, and those its scripts call: HGET, HSET, HDEL, HKEYS, HINCRBY, PEXPIRE) and its key prefix, with ACL SETUSER",
  ],
  [
    /^ERR (DB index is out of range|invalid DB index)/,
    'the database number in the store URL does not exist on this server: use one below its `databases` setting (16 by default)',
  ],
  [
    /^ERR SELECT is not allowed in cluster mode/,
    'Redis Cluster has only database 0: remove the database number from the store URL',
  ],
];

/** What to fix when `error` is a configuration mistake, `undefined` when it is not. */
export const redisMisconfiguration: MisconfigurationAdvice = (error) => {
  if (!(error instanceof Error)) return undefined;
  return ADVICE.find(([pattern]) => pattern.test(error.message))?.[1];
};
