/**
 * The Redis keys a store writes under its prefix: one hash per record at `<prefix>{<key>}` (the
 * record and its journal; the hash tag keeps it in one slot on Redis Cluster whatever its key
 * holds), and the two indexes of workflow runs: `<prefix>runs` (every run, see `runs.ts`) and
 * `<prefix>due` (the runs that may be due, see `due.ts`). No prefix holds `{`, so no key of one
 * store can be a key of another store's prefix.
 */
export class RedisKeys {
  readonly #prefix: string;
  /** The sorted set of the keys of workflow runs (see `runs.ts`). */
  readonly runs: string;
  /** The sorted set of the runs that may be due, scored by a lower bound of their lease end (see `due.ts`). */
  readonly due: string;
  /** The SCAN pattern of this store's records. */
  readonly recordPattern: string;

  constructor(prefix: string) {
    this.#prefix = prefix;
    this.runs = `${prefix}runs`;
    this.due = `${prefix}due`;
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
