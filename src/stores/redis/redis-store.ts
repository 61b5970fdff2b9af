import { freshRecord, isExpired } from '../../core/claim-rules.js';
import type {
  AppendInput,
  JournalEntry,
  JournalStore,
  ReopenInput,
  RunListOptions,
  RunPage,
} from '../../core/journal.js';
import type {
  AdminStore,
  ClaimInput,
  ClaimResult,
  CompleteInput,
  ExtendInput,
  IdempotencyRecord,
  ListOptions,
  ListPage,
} from '../../core/store.js';
import {
  asBuffer,
  checkGetManyKeys,
  checkListLimit,
  checkOneConnection,
  checkSweepLimit,
  invalidOptions,
  recordsInOrder,
  StoreOperations,
} from '../../store-kit/index.js';
import { checkJournalSeq } from '../../store-kit/limits.js';
import {
  decodeCursor,
  decodeEntries,
  decodeRecord,
  encodeCursor,
  LIST_START,
  type ListPosition,
  RECORD_FIELDS,
} from './codec.js';
import { pageDueRuns } from './due.js';
import { redisMisconfiguration } from './errors.js';
import { checkEvictionPolicy } from './eviction-check.js';
import { RedisKeys } from './keys.js';
import { openOwnClient } from './own-client.js';
import { readMany } from './read-many.js';
import { appendEntry, extendLease } from './run-writes.js';
import { pageRuns } from './runs.js';
import { CLAIM, COMPLETE, type LuaScript, RELEASE, REOPEN, runScript, SWEEP_ONE } from './scripts.js';

/**
 * What the store needs from a Redis client: send a command, get the reply with bulk strings as
 * Buffers. ioredis's `Redis` and `Cluster` fit as they are; wrap any other client in it.
 */
export interface RedisLike {
  /** Sends `command` with `args`; resolves with the reply, bulk strings as Buffers, integers as numbers. */
  callBuffer(command: string, ...args: (string | Buffer | number)[]): Promise<unknown>;
  /**
   * Redis Cluster only (ioredis `Cluster#nodes`): a client for each master node, so that `list()`
   * and `sweep()` SCAN every node. Absent on a single server, which is scanned through the client
   * itself. Its presence also tells the store that keys of different slots cannot meet in one
   * script (see `run-writes.ts`).
   */
  nodes?(role: 'master'): RedisLike[];
}

export interface RedisStoreOptions {
  /**
   * A client you manage, or a function returning one (called once, on first use). The store never
   * closes it. Give `client` or `url`, not both.
   */
  client?: RedisLike | (() => RedisLike);
  /**
   * A `redis://` or `rediss://` URL: the store opens its own ioredis client on first use and
   * `close()` ends it. Give `client` or `url`, not both.
   */
  url?: string;
  /**
   * Start of every Redis key the store writes (`<prefix>{<key>}`), so several stores can share one
   * database. Letters, digits, `_`, `:`, `-` and `.`; at most 100 characters. Default `idem:`.
   */
  prefix?: string;
  /** Own client only (`url`): how long to wait for a connection, in ms. Default 3000. */
  connectTimeoutMs?: number;
  /**
   * Own client only (`url`): how long to wait for any command's reply, in ms, including while
   * it waits for a connection. Default 3000.
   */
  commandTimeoutMs?: number;
  /**
   * Called at most once, on first use, with a warning about the server's setup: a
   * `maxmemory-policy` other than `noeviction`, under which Redis may evict records. Skipped
   * silently where the server refuses `CONFIG GET` (managed Redis). Default `console.warn`.
   */
  onWarning?: (message: string) => void;
}

const STORE_NAME = 'redis';
const PREFIX_PATTERN = /^[A-Za-z0-9_:.-]{1,100}$/;
const SWEEP_SCAN_COUNT = 1000;
/** Most scripts or reads in flight at once while sweeping or listing. */
const MAX_PARALLEL = 500;

/**
 * A store on Redis (or Redis Cluster). Each record is one hash at `<prefix>{<key>}`, changed only
 * by one Lua script per operation, so every claim, completion, release and extension is atomic.
 * Redis drops each record itself once its retention ends. It keeps journals for durable
 * workflows: a run's entries in its record's hash, its key in the runs index (`runs.ts`) and, while
 * it may be due, in the due index (`due.ts`).
 *
 * @example
 * ```ts
 * import { idempotent } from 'idem';
 * import { RedisStore } from 'idem/redis';
 * const store = new RedisStore({ url: process.env.REDIS_URL, prefix: 'billing:idem:' });
 * const charge = idempotent(chargeCard, { store, key: (req) => req.id });
 * ```
 */
export class RedisStore implements AdminStore, JournalStore {
  readonly name = STORE_NAME;
  #keys: RedisKeys;
  #ops: StoreOperations<RedisLike>;

  constructor(options: RedisStoreOptions) {
    const prefix = options.prefix ?? 'idem:';
    if (!PREFIX_PATTERN.test(prefix)) {
      throw invalidOptions(
        STORE_NAME,
        `prefix ${JSON.stringify(prefix)} is not allowed: use 1 to 100 letters, digits, '_', ':', '-' or '.'.`,
      );
    }
    checkOneConnection(STORE_NAME, 'client', options.client, options.url);
    for (const name of ['connectTimeoutMs', 'commandTimeoutMs'] as const) {
      const value = options[name];
      if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
        throw invalidOptions(STORE_NAME, `${name} must be a positive number of ms.`);
      }
    }
    if (options.onWarning !== undefined && typeof options.onWarning !== 'function') {
      throw invalidOptions(STORE_NAME, `onWarning must be a function, got ${typeof options.onWarning}.`);
    }
    const onWarning = options.onWarning ?? ((message: string) => console.warn(message));
    this.#keys = new RedisKeys(prefix);
    this.#ops = new StoreOperations({
      store: STORE_NAME,
      className: 'RedisStore',
      given: options.client,
      openOwn: () =>
        openOwnClient({
          url: options.url ?? '',
          connectTimeoutMs: options.connectTimeoutMs ?? 3000,
          commandTimeoutMs: options.commandTimeoutMs ?? 3000,
        }),
      misconfiguration: redisMisconfiguration,
      prepare: (client) => checkEvictionPolicy(client, onWarning),
    });
  }

  /**
   * Readiness check: connects and sends `PING`. Rejects with `STORE_MISCONFIGURED` when the server
   * refuses the configuration (password, user, permissions, database number), `STORE_UNAVAILABLE`
   * when it cannot be reached.
   */
  async ping(): Promise<void> {
    await this.#ops.run('ping', (client) => client.callBuffer('PING'));
  }

  async claim(input: ClaimInput): Promise<ClaimResult> {
    return this.#ops.run('claim', async (client) => {
      const reply = await this.#eval(client, CLAIM, input.key, [
        input.key,
        input.fingerprint,
        input.token,
        String(input.nowMs),
        String(input.leaseExpiresAtMs),
        String(input.expiresAtMs),
        retentionLeftMs(input.expiresAtMs, input.nowMs),
      ]);
      const [outcome, first, second] = reply as [number, unknown, unknown];
      if (outcome === 0) {
        const record = decodeRecord(first);
        if (record === null) throw new Error(`claim found no record at ${this.#keys.record(input.key)}`);
        return { claimed: false, record };
      }
      const record = freshRecord(input);
      if (outcome === 1) return { claimed: true, takeover: false, record };
      // Taken over: the script reports the two fields the input does not give.
      return {
        claimed: true,
        takeover: true,
        record: { ...record, createdAtMs: Number(String(first)), attempts: Number(second) },
      };
    });
  }

  async complete(input: CompleteInput): Promise<boolean> {
    return this.#ops.run('complete', async (client) => {
      const reply = await this.#eval(client, COMPLETE, input.key, [
        input.token,
        asBuffer(input.result),
        String(input.nowMs),
        String(input.expiresAtMs),
        retentionLeftMs(input.expiresAtMs, input.nowMs),
      ]);
      return reply === 1;
    });
  }

  async release(key: string, token: string): Promise<boolean> {
    return this.#ops.run('release', async (client) => (await this.#eval(client, RELEASE, key, [token])) === 1);
  }

  async extend(input: ExtendInput): Promise<boolean> {
    return this.#ops.run('extend', (client) =>
      extendLease(client, this.#keys, input, retentionLeftMs(input.expiresAtMs, input.nowMs)),
    );
  }

  async get(key: string, nowMs?: number): Promise<IdempotencyRecord | null> {
    return this.#ops.run('get', async (client) => {
      const record = await this.#read(client, key);
      if (record === null || (nowMs !== undefined && isExpired(record, nowMs))) return null;
      return record;
    });
  }

  /** One script for all the keys on a single server; one HMGET per key, all in flight, on a Cluster (`read-many.ts`). */
  async getMany(keys: readonly string[], nowMs?: number): Promise<(IdempotencyRecord | null)[]> {
    return this.#ops.run('getMany', async (client) => {
      const unique = [...new Set(checkGetManyKeys(STORE_NAME, keys))];
      if (unique.length === 0) return [];
      const found = await readMany(client, this.#keys, unique);
      return recordsInOrder(keys, found.filter(isRecord), (record) => record, nowMs);
    });
  }

  async delete(key: string): Promise<boolean> {
    return this.#ops.run('delete', async (client) => (await client.callBuffer('DEL', this.#keys.record(key))) === 1);
  }

  async append(input: AppendInput): Promise<boolean> {
    return this.#ops.run('append', async (client) => {
      // The seq becomes a field name: `j:1.5` or `j:1e+21` would be entries no seq order knows.
      checkJournalSeq(STORE_NAME, input.seq);
      return appendEntry(client, this.#keys, input);
    });
  }

  async entries(key: string): Promise<JournalEntry[]> {
    return this.#ops.run('entries', async (client) =>
      decodeEntries(await client.callBuffer('HGETALL', this.#keys.record(key))),
    );
  }

  async reopen(input: ReopenInput): Promise<boolean> {
    return this.#ops.run('reopen', async (client) => {
      const reply = await this.#eval(client, REOPEN, input.key, [
        input.expectedToken,
        input.token,
        String(input.nowMs),
        String(input.leaseExpiresAtMs),
        String(input.expiresAtMs),
        retentionLeftMs(input.expiresAtMs, input.nowMs),
      ]);
      return reply === 1;
    });
  }

  async runs(options: RunListOptions = {}): Promise<RunPage> {
    return this.#ops.run('runs', (client) => {
      if (options.dueBy === undefined) return pageRuns(client, this.#keys, options);
      const limit = checkListLimit(STORE_NAME, options.limit, 'runs');
      return pageDueRuns(client, this.#keys, options.dueBy, limit, options.cursor);
    });
  }

  async list(options: ListOptions = {}): Promise<ListPage> {
    return this.#ops.run('list', (client) => this.#list(client, options));
  }

  /** Scans node after node (every master of a Cluster) from the cursor's position, reading the records found. */
  async #list(client: RedisLike, options: ListOptions): Promise<ListPage> {
    const limit = checkListLimit(STORE_NAME, options.limit);
    const scanCount = Math.min(Math.max(limit, 100), 1000);
    const nodes = this.#nodes(client);
    const records: IdempotencyRecord[] = [];
    let position = options.cursor === undefined ? LIST_START : decodeCursor(options.cursor);
    for (;;) {
      if (position.pending.length > 0) {
        const page = await this.#readPending(client, position, records, limit, options);
        if (page !== undefined) return page;
        position = { ...position, pending: [] };
        continue;
      }
      const server = nodes[position.node];
      if (server === undefined) return { records, nextCursor: undefined };
      const [next, keys] = await this.#scan(server, position.scan, scanCount);
      position =
        next === '0'
          ? { node: position.node + 1, scan: '0', pending: keys }
          : { ...position, scan: next, pending: keys };
    }
  }

  /**
   * Reads the records of `position.pending` into `records`, in chunks, and returns the page once one
   * more record than `limit` is found (so that a page only gets a cursor when a further record
   * exists); `undefined` when every pending key was read.
   */
  async #readPending(
    client: RedisLike,
    position: ListPosition,
    records: IdempotencyRecord[],
    limit: number,
    options: ListOptions,
  ): Promise<ListPage | undefined> {
    let { pending } = position;
    while (pending.length > 0) {
      const chunk = pending.slice(0, Math.min(MAX_PARALLEL, limit - records.length + 1));
      const found = await Promise.all(chunk.map((key) => this.#read(client, key)));
      for (const [i, record] of found.entries()) {
        if (!isListed(record, options)) continue;
        if (records.length === limit) {
          return { records, nextCursor: encodeCursor({ ...position, pending: pending.slice(i) }) };
        }
        records.push(record);
      }
      pending = pending.slice(chunk.length);
    }
    return undefined;
  }

  /** Redis drops expired records by itself (PEXPIRE); this deletes at once those whose time has come by `nowMs`. */
  async sweep(nowMs: number, limit?: number): Promise<number> {
    return this.#ops.run('sweep', async (client) => {
      const most = checkSweepLimit(STORE_NAME, limit);
      let deleted = 0;
      for (const server of this.#nodes(client)) {
        let scan = '0';
        do {
          const [next, keys] = await this.#scan(server, scan, SWEEP_SCAN_COUNT);
          scan = next;
          // Never more scripts in flight than deletions still allowed, so the sweep cannot pass the limit.
          for (let i = 0; i < keys.length && deleted < most; ) {
            const chunk = keys.slice(i, i + Math.min(MAX_PARALLEL, most - deleted));
            i += chunk.length;
            const replies = await Promise.all(chunk.map((key) => this.#eval(client, SWEEP_ONE, key, [String(nowMs)])));
            deleted += replies.filter((reply) => reply === 1).length;
          }
        } while (scan !== '0' && deleted < most);
        if (deleted >= most) break;
      }
      return deleted;
    });
  }

  /** Ends the client the store opened from `url`; a client passed in stays open. */
  async close(): Promise<void> {
    return this.#ops.close();
  }

  /** The servers to SCAN: every master of a Cluster, or the one server. */
  #nodes(client: RedisLike): RedisLike[] {
    if (client.nodes === undefined) return [client];
    const masters = client.nodes('master');
    if (masters.length === 0) throw new Error('the Redis Cluster client knows no master node yet');
    return masters;
  }

  /** One batch of SCAN over this store's records on one server: the next cursor and the record keys. */
  async #scan(server: RedisLike, cursor: string, count: number): Promise<[string, string[]]> {
    const pattern = this.#keys.recordPattern;
    const reply = (await server.callBuffer('SCAN', cursor, 'MATCH', pattern, 'COUNT', count)) as [Buffer, Buffer[]];
    return [reply[0].toString('utf8'), reply[1].map((redisKey) => this.#keys.keyOf(redisKey))];
  }

  /** The record `key`, its fields read by name (never its journal). */
  async #read(client: RedisLike, key: string): Promise<IdempotencyRecord | null> {
    return decodeRecord(await client.callBuffer('HMGET', this.#keys.record(key), ...RECORD_FIELDS));
  }

  /** Runs `script` on the record `key` (KEYS[1]) with `args` (ARGV). */
  #eval(client: RedisLike, script: LuaScript, key: string, args: (string | Buffer)[]): Promise<unknown> {
    return runScript(client, script, [this.#keys.record(key)], args);
  }
}

/** Time left until `expiresAtMs` by the caller's clock, as PEXPIRE's argument: whole ms, at least 1. */
function retentionLeftMs(expiresAtMs: number, nowMs: number): string {
  return String(Math.max(1, Math.ceil(expiresAtMs - nowMs)));
}

/** Whether a record read while listing belongs on the page: it exists and passes the state and expiry filters. */
function isListed(record: IdempotencyRecord | null, options: ListOptions): record is IdempotencyRecord {
  return (
    record !== null &&
    (options.state === undefined || record.state === options.state) &&
    (options.nowMs === undefined || !isExpired(record, options.nowMs))
  );
}

function isRecord(record: IdempotencyRecord | null): record is IdempotencyRecord {
  return record !== null;
}
