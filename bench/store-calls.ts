/**
 * The cost of one store call, in the Node process: CPU microseconds (process.cpuUsage) and
 * commands sent to the server (counted at the driver) per claim of a new key, per completion and
 * per claim that finds a completed record, one call at a time. With `--old <dir>`, the same store
 * from another copy of `src` (say `git archive main src | tar -x -C .old`) runs in the same
 * process, round by round in turn with this one, so a busy machine weighs on both alike.
 *
 *   npx tsx bench/store-calls.ts redis [--old .old/src] [--calls 2000] [--rounds 5]
 *
 * Stores: redis, sqlite, postgres, mysql. Servers as in store-targets.ts.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Store } from '../src/core/store.js';
import { deleteKeys, servers } from './store-targets.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    old: { type: 'string' },
    raw: { type: 'boolean', default: false },
    calls: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '1' },
  },
});
const storeName = positionals[0] ?? 'redis';
const calls = Number(values.calls);
const rounds = Number(values.rounds);
const inFlight = Number(values.concurrency);
const RESULT = new Uint8Array(Buffer.alloc(200, 7));
const HOUR_MS = 3_600_000;

/** Commands the process sent, counted by patching the driver. */
const sent = { count: 0 };

async function countCommands(): Promise<void> {
  if (storeName === 'redis') {
    const { Redis } = await import('ioredis');
    const proto = Redis.prototype as unknown as { sendCommand: (...args: unknown[]) => unknown };
    const original = proto.sendCommand;
    proto.sendCommand = function (this: unknown, ...args: unknown[]) {
      sent.count++;
      return original.apply(this, args);
    };
  } else if (storeName === 'mysql') {
    const { default: mysql } = await import('mysql2');
    const proto = (mysql as unknown as { Connection: { prototype: { query: (...args: unknown[]) => unknown } } })
      .Connection.prototype;
    const original = proto.query;
    proto.query = function (this: unknown, ...args: unknown[]) {
      sent.count++;
      return original.apply(this, args);
    };
  } else if (storeName === 'postgres') {
    const { default: pg } = await import('pg');
    const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
    const original = proto.query;
    proto.query = function (this: unknown, ...args: unknown[]) {
      sent.count++;
      return original.apply(this, args);
    };
  }
}

interface Variant {
  label: string;
  store: Store;
  cleanup(): Promise<void>;
}

/** Redis only: the bare driver doing SET NX PX, SET PX and GET in place of claim, complete and replay. */
async function rawRedisVariant(): Promise<Variant> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(servers.redis, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  const prefix = `calls_raw_${randomUUID().slice(0, 8)}:`;
  const store = {
    name: 'raw',
    claim: async (input: { key: string; token: string }) =>
      (await redis.set(`${prefix}${input.key}`, input.token, 'PX', HOUR_MS, 'NX')) ??
      redis.getBuffer(`${prefix}${input.key}`),
    complete: async (input: { key: string; result: Uint8Array }) =>
      redis.set(`${prefix}${input.key}`, Buffer.from(input.result), 'PX', HOUR_MS),
    close: async () => redis.quit(),
  } as unknown as Store;
  return { label: 'raw', store, cleanup: () => dropRedisKeys(prefix) };
}

async function openVariant(label: string, srcDir: string): Promise<Variant> {
  const tag = `calls_${label}_${randomUUID().slice(0, 8)}`;
  const module = (name: string) => import(resolve(srcDir, 'stores', name, 'index.ts'));
  switch (storeName) {
    case 'redis': {
      const { RedisStore } = await module('redis');
      const store = new RedisStore({ url: servers.redis, prefix: `${tag}:`, onWarning: () => {} }) as Store;
      return { label, store, cleanup: () => dropRedisKeys(`${tag}:`) };
    }
    case 'sqlite': {
      const { SqliteStore } = await module('sqlite');
      const directory = mkdtempSync(join(tmpdir(), 'idem-calls-'));
      const store = new SqliteStore({ path: join(directory, 'idem.db') }) as Store;
      return { label, store, cleanup: async () => rmSync(directory, { recursive: true, force: true }) };
    }
    case 'postgres': {
      const { PostgresStore } = await module('postgres');
      const store = new PostgresStore({ url: servers.postgres, table: tag }) as Store;
      return { label, store, cleanup: () => dropPostgresTables(tag) };
    }
    case 'mysql': {
      const { MysqlStore } = await module('mysql');
      const store = new MysqlStore({ url: servers.mysql, table: tag }) as Store;
      return { label, store, cleanup: () => dropMysqlTables(tag) };
    }
    default:
      throw new Error(`unknown store ${storeName}`);
  }
}

async function dropRedisKeys(prefix: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(servers.redis);
  await deleteKeys(redis, prefix);
  await redis.quit();
}

async function dropPostgresTables(table: string): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: servers.postgres });
  await client.connect();
  await client.query(`DROP TABLE IF EXISTS "${table}_journal", "${table}"`);
  await client.end();
}

async function dropMysqlTables(table: string): Promise<void> {
  const mysql = await import('mysql2/promise');
  const connection = await mysql.createConnection({ uri: servers.mysql });
  await connection.query(`DROP TABLE IF EXISTS \`${table}_journal\`, \`${table}\``);
  await connection.end();
}

type Phase = 'claim new' | 'complete' | 'claim replay';
const PHASES: Phase[] = ['claim new', 'complete', 'claim replay'];

interface Totals {
  cpuUs: number;
  wallUs: number;
  commands: number;
  calls: number;
}

/** Runs `call` for 0..calls-1, `inFlight` at a time; CPU and commands spent. */
async function timed(call: (i: number) => Promise<unknown>): Promise<Totals> {
  const commandsBefore = sent.count;
  const before = process.cpuUsage();
  const startedMs = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < calls) await call(next++);
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const used = process.cpuUsage(before);
  const wallUs = (performance.now() - startedMs) * 1000;
  return { cpuUs: used.user + used.system, wallUs, commands: sent.count - commandsBefore, calls };
}

async function roundOn(variant: Variant, round: number, totals: Map<string, Totals>): Promise<void> {
  const nowMs = Date.now();
  const keys = Array.from({ length: calls }, (_, i) => `k-${round}-${i}-${randomUUID()}`);
  const tokens = keys.map(() => randomUUID());
  const claim = (i: number) =>
    variant.store.claim({
      key: keys[i] as string,
      fingerprint: 'fp',
      token: tokens[i] as string,
      nowMs,
      leaseExpiresAtMs: nowMs + 30_000,
      expiresAtMs: nowMs + HOUR_MS,
    });
  const phases: Record<Phase, (i: number) => Promise<unknown>> = {
    'claim new': claim,
    complete: (i) =>
      variant.store.complete({
        key: keys[i] as string,
        token: tokens[i] as string,
        result: RESULT,
        nowMs,
        expiresAtMs: nowMs + HOUR_MS,
      }),
    'claim replay': claim,
  };
  for (const phase of PHASES) {
    const got = await timed(phases[phase]);
    const id = `${variant.label}|${phase}`;
    const sum = totals.get(id) ?? { cpuUs: 0, wallUs: 0, commands: 0, calls: 0 };
    totals.set(id, {
      cpuUs: sum.cpuUs + got.cpuUs,
      wallUs: sum.wallUs + got.wallUs,
      commands: sum.commands + got.commands,
      calls: sum.calls + got.calls,
    });
  }
}

async function main(): Promise<void> {
  await countCommands();
  const variants = [await openVariant('new', resolve(import.meta.dirname, '../src'))];
  if (values.old !== undefined) variants.push(await openVariant('old', resolve(values.old)));
  if (values.raw && storeName === 'redis') variants.push(await rawRedisVariant());
  const totals = new Map<string, Totals>();
  // A warm-up round each, not counted: connections, prepared statements, JIT.
  for (const variant of variants) await roundOn(variant, -1, new Map());
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    for (const variant of order) await roundOn(variant, round, totals);
  }
  console.log(
    `${storeName}: ${calls} calls x ${rounds} rounds, ${inFlight} in flight; CPU us, wall us and commands per call`,
  );
  for (const phase of PHASES) {
    const line = variants.map((variant) => {
      const t = totals.get(`${variant.label}|${phase}`) as Totals;
      const cpu = (t.cpuUs / t.calls).toFixed(1).padStart(6);
      const wall = (t.wallUs / t.calls).toFixed(0).padStart(5);
      return `${variant.label} ${cpu} us cpu ${wall} us wall ${(t.commands / t.calls).toFixed(2)} cmd`;
    });
    console.log(`  ${phase.padEnd(13)} ${line.join('   ')}`);
  }
  for (const variant of variants) {
    await (variant.store as Store & { close?(): Promise<void> }).close?.();
    await variant.cleanup();
  }
}

await main();
