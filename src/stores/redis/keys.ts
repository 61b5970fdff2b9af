/**
 * The Redis keys a store writes under its prefix: one hash per record at `<prefix>{<key>}` (the
 * record and its journal; the hash tag keeps it in one slot on Redis Cluster whatever its key
 * holds), and the runs index at `<prefix>runs`. No prefix holds `{`, so neither kind of key of one
 * store can be a key of another store's prefix.
 */
export class RedisKeys {
  readonly #prefix: string;
  /** The sorted set of the keys of workflow runs (see `runs.ts`). */
  readonly runs: string;
  /** The SCAN pattern of this store's records. */
  readonly recordPattern: string;

  constructor(prefix: string) {
    this.#prefix = prefix;
    this.runs = `${prefix}runs`;
    this.recordPattern = `${prefix}{*`;
  }

  /** The hash that holds the record `key`. */
  record(key: string): string {
    return `${this.#prefix}{${key}}`;
  }

  /** The record key in a Redis key SCAN found by `recordPattern`. */
  keyOf(redisKey: Buffer): string {
    return redisKey.toString('utf8').slice(this.#prefix.length + 1, -1);
  }
}
