import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isIdempotencyError } from '../core/errors.js';
import type { AdminStore } from '../core/store.js';
import { CliError, ExitCode, reasonOf, usageError } from './cli-error.js';
import { missingDriverError } from './missing-driver.js';
import { probeTcp } from './tcp-probe.js';

/** A store named by a `--store` URL, before it is opened. */
export type StoreSpec =
  | { kind: 'memory' }
  | { kind: 'sqlite'; path: string; table?: string }
  | { kind: 'postgres'; url: string; table?: string }
  | { kind: 'mysql'; url: string; table?: string }
  | { kind: 'redis'; url: string; prefix?: string };

/** The store the CLI uses when `--store` is not given: one SQLite file in the working directory. */
export const DEFAULT_STORE_URL = 'sqlite:./idem.db';

const FORMS =
  'use sqlite:./idem.db, postgres://user@host:5432/db, redis://host:6379, mysql://user@host:3306/db or memory:';

/**
 * Parses a `--store` URL. Each store takes one option in the query string: `?table=` for SQLite,
 * PostgreSQL and MySQL (default `idem_records`), `?prefix=` for Redis (default `idem:`).
 *
 * @example
 * ```ts
 * parseStoreUrl('sqlite:./idem.db');                          // { kind: 'sqlite', path: './idem.db' }
 * parseStoreUrl('postgres://app@db:5432/app?table=idem_api'); // { kind: 'postgres', url: 'postgres://app@db:5432/app', table: 'idem_api' }
 * ```
 */
export function parseStoreUrl(text: string): StoreSpec {
  const raw = String(text).trim();
  if (raw === '') throw usageError(`--store is empty: ${FORMS}.`);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(raw)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'memory':
      return memorySpec(raw);
    case 'sqlite':
      return sqliteSpec(raw);
    case 'postgres':
    case 'postgresql':
      return postgresSpec(raw);
    case 'mysql':
    case 'mariadb':
      return mysqlSpec(raw);
    case 'redis':
    case 'rediss':
      return redisSpec(raw);
    default:
      throw unknownStore(raw, scheme);
  }
}

function memorySpec(raw: string): StoreSpec {
  if (raw.replace(/^memory:(\/\/)?/i, '') !== '') {
    throw usageError(`--store ${JSON.stringify(raw)}: the memory store takes no path; write memory:.`);
  }
  return { kind: 'memory' };
}

function sqliteSpec(raw: string): StoreSpec {
  const [rest = '', query = ''] = raw
    .slice('sqlite:'.length)
    .replace(/^\/\//, '')
    .split(/\?(.*)/s);
  if (rest === '') throw usageError(`--store ${JSON.stringify(raw)} names no file: write sqlite:./idem.db.`);
  const params = new URLSearchParams(query);
  for (const key of params.keys()) {
    if (key !== 'table')
      throw usageError(`--store ${JSON.stringify(raw)}: unknown option ?${key}=; SQLite takes only ?table=.`);
  }
  const table = optionOf(raw, params, 'table');
  return table === undefined ? { kind: 'sqlite', path: rest } : { kind: 'sqlite', path: rest, table };
}

function postgresSpec(raw: string): StoreSpec {
  const url = serverUrl(raw, 'postgres');
  const table = optionOf(raw, url.searchParams, 'table');
  url.searchParams.delete('table');
  return { kind: 'postgres', url: url.toString(), ...(table === undefined ? {} : { table }) };
}

function mysqlSpec(raw: string): StoreSpec {
  const url = serverUrl(raw, 'mysql');
  const table = optionOf(raw, url.searchParams, 'table');
  url.searchParams.delete('table');
  const normal = url.toString().replace(/^mariadb:/i, 'mysql:');
  return { kind: 'mysql', url: normal, ...(table === undefined ? {} : { table }) };
}

function redisSpec(raw: string): StoreSpec {
  const url = serverUrl(raw, 'redis');
  const prefix = optionOf(raw, url.searchParams, 'prefix');
  url.searchParams.delete('prefix');
  return { kind: 'redis', url: url.toString(), ...(prefix === undefined ? {} : { prefix }) };
}

/** No store has this scheme; a bare SQLite file name gets the URL to write instead. */
function unknownStore(raw: string, scheme: string | undefined): CliError {
  if (scheme === undefined && /\.(db|sqlite3?)$/i.test(raw)) {
    return usageError(
      `--store ${JSON.stringify(raw)} is not a store URL: to use that SQLite file, write sqlite:${raw}.`,
    );
  }
  return usageError(`--store ${JSON.stringify(raw)} is not a store URL I know: ${FORMS}.`);
}

/** The URL with its password hidden, for messages and logs. */
export function describeStore(spec: StoreSpec): string {
  switch (spec.kind) {
    case 'memory':
      return 'memory (this process only)';
    case 'sqlite':
      return `sqlite:${spec.path}`;
    default: {
      const url = new URL(spec.url);
      if (url.password !== '') url.password = '***';
      return url.toString();
    }
  }
}

export interface OpenStoreOptions {
  /** How long connecting and the first round trip may take, in ms. Default 3000. */
  timeoutMs?: number;
}

/**
 * Opens the store and makes one read, so that a store that cannot be reached is reported now,
 * in one line, rather than as a 503 on the first request. The drivers are imported only here:
 * each is an optional peer dependency.
 */
export async function openStore(spec: StoreSpec, options: OpenStoreOptions = {}): Promise<AdminStore> {
  const timeoutMs = options.timeoutMs ?? 3000;
  if (spec.kind === 'postgres' || spec.kind === 'mysql' || spec.kind === 'redis') {
    const url = new URL(spec.url);
    const port = Number(url.port || { postgres: 5432, mysql: 3306, redis: 6379 }[spec.kind]);
    try {
      await probeTcp(url.hostname, port, timeoutMs);
    } catch (error) {
      throw new CliError(
        `cannot reach the ${spec.kind} store at ${describeStore(spec)}: ${reasonOf(error)}. Check --store and that the server is running.`,
      );
    }
  }
  const store = await createStore(spec, timeoutMs);
  // A store may say what is wrong with its set-up (a wrong password, a missing database) through
  // an optional ping(); a read stands in for it on stores without one.
  const ping = (store as { ping?: () => Promise<void> }).ping;
  if (typeof ping === 'function') {
    try {
      await withTimeout(ping.call(store), timeoutMs);
    } catch (error) {
      await store.close().catch(() => {});
      throw (
        missingDriverError(spec.kind, error) ??
        new CliError(
          `cannot use the ${spec.kind} store at ${describeStore(spec)}: ${ownReason(error)}.`,
          ExitCode.failure,
          {
            cause: error,
          },
        )
      );
    }
    return store;
  }
  try {
    await withTimeout(store.get('idem-cli-ping', Date.now()), timeoutMs);
  } catch (error) {
    await store.close().catch(() => {});
    throw (
      missingDriverError(spec.kind, error) ??
      new CliError(
        `cannot reach the ${spec.kind} store at ${describeStore(spec)}: ${reasonOf(error)}. Check --store and that the server is running.`,
        ExitCode.failure,
        { cause: error },
      )
    );
  }
  return store;
}

async function createStore(spec: StoreSpec, timeoutMs: number): Promise<AdminStore> {
  const table = 'table' in spec && spec.table !== undefined ? { table: spec.table } : {};
  try {
    switch (spec.kind) {
      case 'memory': {
        const { MemoryStore } = await import('../stores/memory/index.js');
        return new MemoryStore();
      }
      case 'sqlite': {
        const directory = dirname(resolve(spec.path));
        if (spec.path !== ':memory:' && (!existsSync(directory) || !statSync(directory).isDirectory())) {
          throw new CliError(
            `cannot open the sqlite store at ${spec.path}: the directory ${directory} does not exist. Create it, or point --store at another file.`,
          );
        }
        const { SqliteStore } = await import('../stores/sqlite/index.js');
        return new SqliteStore({ path: spec.path, ...table });
      }
      case 'postgres': {
        const { PostgresStore } = await import('../stores/postgres/index.js');
        return new PostgresStore({
          url: spec.url,
          connectTimeoutMs: timeoutMs,
          queryTimeoutMs: Math.max(timeoutMs, 5000),
          ...table,
        });
      }
      case 'mysql': {
        const { MysqlStore } = await import('../stores/mysql/index.js');
        return new MysqlStore({ url: spec.url, connectTimeoutMs: timeoutMs, ...table });
      }
      case 'redis': {
        const { RedisStore } = await import('../stores/redis/index.js');
        return new RedisStore({
          url: spec.url,
          connectTimeoutMs: timeoutMs,
          commandTimeoutMs: timeoutMs,
          ...(spec.prefix === undefined ? {} : { prefix: spec.prefix }),
        });
      }
    }
  } catch (error) {
    if (error instanceof CliError) throw error;
    const code = (error as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new CliError(
        `the ${spec.kind} store needs its driver: npm install ${DRIVERS[spec.kind]} (${reasonOf(error)}).`,
        ExitCode.failure,
        { cause: error },
      );
    }
    // Options the store itself refused (a table name with a dash, a bad Redis prefix).
    throw usageError(`--store ${describeStore(spec)}: ${reasonOf(error)}`);
  }
}

const DRIVERS = { memory: '', sqlite: 'better-sqlite3', postgres: 'pg', mysql: 'mysql2', redis: 'ioredis' } as const;

function serverUrl(raw: string, kind: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usageError(`--store ${JSON.stringify(raw)} is not a valid ${kind} URL: ${FORMS}.`);
  }
  if (url.hostname === '') {
    throw usageError(`--store ${JSON.stringify(raw)} names no host: write ${kind}://user@host:port/...`);
  }
  return url;
}

/** Idem's own option in the query string; the driver's (`sslmode`, `db`...) are left to it. */
function optionOf(raw: string, params: URLSearchParams, name: string): string | undefined {
  const value = params.get(name);
  if (value === null) return undefined;
  if (value === '') throw usageError(`--store ${JSON.stringify(raw)}: ?${name}= is empty.`);
  return value;
}

/** An Idem error's own message (it says what to do), else the innermost reason. */
function ownReason(error: unknown): string {
  if (!isIdempotencyError(error)) return reasonOf(error);
  return error.message.replace(/^(\[[^\]]+\] )+/, '').replace(/\.+$/, '');
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
