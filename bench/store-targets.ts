import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Store } from '../src/core/store.js';
import { MemoryStore } from '../src/stores/memory/index.js';
import { MysqlStore } from '../src/stores/mysql/index.js';
import { PostgresStore } from '../src/stores/postgres/index.js';
import { RedisStore } from '../src/stores/redis/index.js';
import { SqliteStore } from '../src/stores/sqlite/index.js';

/** The servers the benchmark talks to; the same variables as the test suite point it elsewhere. */
export const servers = {
  postgres: process.env.IDEM_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  redis: process.env.IDEM_REDIS_URL ?? 'redis://127.0.0.1:6379',
  mysql: process.env.IDEM_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
} as const;

export const STORE_NAMES = ['memory', 'sqlite', 'postgres', 'redis', 'mysql'] as const;
export type StoreName = (typeof STORE_NAMES)[number];

/** Table, key prefix and file names the benchmark owns; dropped before and after each run. */
export const BENCH_TABLE = 'idem_bench';
const RAW_TABLE = 'idem_bench_raw';
export const BENCH_REDIS_PREFIX = 'idem_bench:';
const RAW_REDIS_PREFIX = 'idem_bench_raw:';

/** How long to wait for a server before calling it unreachable, in ms. */
const CONNECT_TIMEOUT_MS = 2000;
const RETENTION_MS = 24 * 60 * 60 * 1000;

/**
 * The same work done with the bare driver: what an idempotency store cannot go below on this
 * server. `twoWrites` is a conditional insert then an update of the same key (a claim, then the
 * stored result); `oneRead` reads one key back (a replay).
 */
export interface RawFloor {
  /** What the two writes are, for the table. */
  writes: string;
  /** What the read is, for the table. */
  read: string;
  twoWrites(key: string): Promise<void>;
  oneRead(key: string): Promise<unknown>;
}

export interface StoreTarget {
  name: StoreName;
  /** Where the records live, for the report. */
  where: string;
  store: Store;
  floor: RawFloor;
  /** Closes the store and the raw client, and drops everything the run wrote. */
  close(): Promise<void>;
}

/** A store whose server did not answer: skipped with this reason. */
export class Unreachable extends Error {
  override readonly name = 'Unreachable';
}

/** About the size of an engine-encoded result of the benchmarked function. */
const RESULT = Buffer.alloc(64, 7);
const MARKER = JSON.stringify({ state: 'in_progress', token: randomUUID(), leaseExpiresAtMs: 0 });

/** Opens the store and the raw floor for one backend, or throws `Unreachable`. */
export async function openTarget(name: StoreName): Promise<StoreTarget> {
  switch (name) {
    case 'memory':
      return memoryTarget();
    case 'sqlite':
      return sqliteTarget();
    case 'postgres':
      return postgresTarget();
    case 'redis':
      return redisTarget();
    case 'mysql':
      return mysqlTarget();
  }
}

function memoryTarget(): StoreTarget {
  const raw = new Map<string, unknown>();
  return {
    name: 'memory',
    where: 'this process',
    // The default cap (100,000 records) would refuse claims part way through a fast run.
    store: new MemoryStore({ maxRecords: 50_000_000 }),
    floor: {
      writes: 'Map.set x2',
      read: 'Map.get',
      async twoWrites(key) {
        raw.set(key, MARKER);
        raw.set(key, RESULT);
      },
      async oneRead(key) {
        return raw.get(key);
      },
    },
    async close() {
      raw.clear();
    },
  };
}

async function sqliteTarget(): Promise<StoreTarget> {
  const { default: Database } = await import('better-sqlite3');
  const directory = mkdtempSync(join(tmpdir(), 'idem-bench-'));
  const store = new SqliteStore({ path: join(directory, 'idem.db'), table: BENCH_TABLE });
  await store.migrate();
  // The same settings as the store's own file: WAL, synchronous NORMAL, the same checkpoint size.
  const db = new Database(join(directory, 'raw.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('wal_autocheckpoint = 4000');
  db.exec(
    `CREATE TABLE ${RAW_TABLE} (key TEXT PRIMARY KEY, state TEXT NOT NULL, token TEXT NOT NULL, result BLOB, expires_at_ms INTEGER NOT NULL)`,
  );
  const insert = db.prepare(
    `INSERT INTO ${RAW_TABLE} (key, state, token, expires_at_ms) VALUES (?, 'in_progress', ?, ?) ON CONFLICT (key) DO NOTHING`,
  );
  const update = db.prepare(`UPDATE ${RAW_TABLE} SET state = 'completed', result = ? WHERE key = ? AND token = ?`);
  const select = db.prepare(`SELECT key, state, token, result, expires_at_ms FROM ${RAW_TABLE} WHERE key = ?`);
  return {
    name: 'sqlite',
    where: `${directory} (WAL, synchronous NORMAL)`,
    store,
    floor: {
      writes: 'INSERT ON CONFLICT DO NOTHING + UPDATE (WAL)',
      read: 'SELECT by key',
      async twoWrites(key) {
        insert.run(key, MARKER, Date.now() + RETENTION_MS);
        update.run(RESULT, key, MARKER);
      },
      async oneRead(key) {
        return select.get(key);
      },
    },
    async close() {
      await store.close();
      db.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

async function postgresTarget(): Promise<StoreTarget> {
  const { default: pg } = await import('pg');
  // The store's own pool has 10 connections; the raw pool gets the same.
  const pool = new pg.Pool({
    connectionString: servers.postgres,
    max: 10,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  pool.on('error', () => {});
  try {
    await pool.query(`DROP TABLE IF EXISTS "${BENCH_TABLE}_journal", "${BENCH_TABLE}", "${RAW_TABLE}"`);
  } catch (error) {
    await pool.end().catch(() => {});
    throw new Unreachable(`PostgreSQL at ${servers.postgres} did not answer: ${describe(error)}`);
  }
  await pool.query(
    `CREATE TABLE "${RAW_TABLE}" (key TEXT PRIMARY KEY, state TEXT NOT NULL, token TEXT NOT NULL, result BYTEA, expires_at_ms BIGINT NOT NULL)`,
  );
  const store = new PostgresStore({ url: servers.postgres, table: BENCH_TABLE });
  await store.migrate();
  const insert = `INSERT INTO "${RAW_TABLE}" (key, state, token, expires_at_ms) VALUES ($1, 'in_progress', $2, $3) ON CONFLICT (key) DO NOTHING`;
  const update = `UPDATE "${RAW_TABLE}" SET state = 'completed', result = $2 WHERE key = $1 AND token = $3`;
  const select = `SELECT key, state, token, result, expires_at_ms FROM "${RAW_TABLE}" WHERE key = $1`;
  return {
    name: 'postgres',
    where: servers.postgres,
    store,
    floor: {
      writes: 'INSERT ON CONFLICT DO NOTHING + UPDATE',
      read: 'SELECT by key',
      async twoWrites(key) {
        await pool.query(insert, [key, MARKER, Date.now() + RETENTION_MS]);
        await pool.query(update, [key, RESULT, MARKER]);
      },
      async oneRead(key) {
        return (await pool.query(select, [key])).rows[0];
      },
    },
    async close() {
      await store.close();
      await pool
        .query(`DROP TABLE IF EXISTS "${BENCH_TABLE}_journal", "${BENCH_TABLE}", "${RAW_TABLE}"`)
        .catch(() => {});
      await pool.end();
    },
  };
}

async function redisTarget(): Promise<StoreTarget> {
  const { Redis } = await import('ioredis');
  // Like the store's own client: one connection, commands fail fast when the server is down.
  const redis = new Redis(servers.redis, {
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: 3000,
    maxRetriesPerRequest: 1,
    lazyConnect: true,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await deleteKeys(redis, BENCH_REDIS_PREFIX);
    await deleteKeys(redis, RAW_REDIS_PREFIX);
  } catch (error) {
    redis.disconnect();
    throw new Unreachable(`Redis at ${servers.redis} did not answer: ${describe(error)}`);
  }
  const store = new RedisStore({ url: servers.redis, prefix: BENCH_REDIS_PREFIX });
  return {
    name: 'redis',
    where: servers.redis,
    store,
    floor: {
      writes: 'SET NX PX + SET PX',
      read: 'GET',
      async twoWrites(key) {
        await redis.set(`${RAW_REDIS_PREFIX}${key}`, MARKER, 'PX', RETENTION_MS, 'NX');
        await redis.set(`${RAW_REDIS_PREFIX}${key}`, RESULT, 'PX', RETENTION_MS);
      },
      async oneRead(key) {
        return redis.getBuffer(`${RAW_REDIS_PREFIX}${key}`);
      },
    },
    async close() {
      await store.close();
      await deleteKeys(redis, BENCH_REDIS_PREFIX).catch(() => {});
      await deleteKeys(redis, RAW_REDIS_PREFIX).catch(() => {});
      await redis.quit();
    },
  };
}

async function mysqlTarget(): Promise<StoreTarget> {
  const mysql = await import('mysql2/promise');
  const pool = mysql.createPool({ uri: servers.mysql, connectionLimit: 10, connectTimeout: CONNECT_TIMEOUT_MS });
  try {
    await pool.query(`DROP TABLE IF EXISTS \`${BENCH_TABLE}_journal\`, \`${BENCH_TABLE}\`, \`${RAW_TABLE}\``);
  } catch (error) {
    await pool.end().catch(() => {});
    throw new Unreachable(`MySQL/MariaDB at ${servers.mysql} did not answer: ${describe(error)}`);
  }
  await pool.query(
    `CREATE TABLE \`${RAW_TABLE}\` (idem_key VARBINARY(255) NOT NULL PRIMARY KEY, state VARCHAR(11) NOT NULL, token VARBINARY(255) NOT NULL, result LONGBLOB NULL, expires_at_ms BIGINT NOT NULL) ENGINE=InnoDB`,
  );
  const store = new MysqlStore({ url: servers.mysql, table: BENCH_TABLE });
  await store.migrate();
  const insert = `INSERT INTO \`${RAW_TABLE}\` (idem_key, state, token, expires_at_ms) VALUES (?, 'in_progress', ?, ?)`;
  const update = `UPDATE \`${RAW_TABLE}\` SET state = 'completed', result = ? WHERE idem_key = ? AND token = ?`;
  const select = `SELECT idem_key, state, token, result, expires_at_ms FROM \`${RAW_TABLE}\` WHERE idem_key = ?`;
  return {
    name: 'mysql',
    where: servers.mysql,
    store,
    floor: {
      writes: 'INSERT + UPDATE',
      read: 'SELECT by key',
      async twoWrites(key) {
        await pool.query(insert, [key, MARKER, Date.now() + RETENTION_MS]);
        await pool.query(update, [RESULT, key, MARKER]);
      },
      async oneRead(key) {
        const [rows] = await pool.query(select, [key]);
        return rows;
      },
    },
    async close() {
      await store.close();
      await pool
        .query(`DROP TABLE IF EXISTS \`${BENCH_TABLE}_journal\`, \`${BENCH_TABLE}\`, \`${RAW_TABLE}\``)
        .catch(() => {});
      await pool.end();
    },
  };
}

/** Deletes every key under `prefix` (SCAN, then DEL in batches). */
export async function deleteKeys(
  redis: Pick<import('ioredis').Redis, 'scan' | 'unlink'>,
  prefix: string,
): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0) deleted += await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
  return deleted;
}

export function describe(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return describe(error.errors[0]);
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
