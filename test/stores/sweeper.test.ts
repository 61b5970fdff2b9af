import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { setImmediate as yieldToTimers } from 'node:timers/promises';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import type { AdminStore } from '../../src/core/store.js';
import { type SweepResult, startSweeper } from '../../src/core/sweeper.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { MysqlStore } from '../../src/stores/mysql/index.js';
import { PostgresStore } from '../../src/stores/postgres/index.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { runChild } from '../kill-child.js';
import { MYSQL_URL } from './mysql.factory.js';
import { postgresUrl } from './postgres.factory.js';
import { dropStore as dropSqlite, sqliteTestPath } from './sqlite.factory.js';

/** The sweeper keeps a store's size bounded by counts, never by durations: no assertion here waits on a clock. */

const suffix = randomBytes(4).toString('hex');
const idleChild = new URL('./fixtures/sweeper-idle-child.ts', import.meta.url).pathname;

/** Claims and completes `count` new keys, each kept `retentionMs`; yields to timers between keys, as a server does between requests. */
async function load(store: AdminStore, count: number, retentionMs: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const key = randomUUID();
    const token = randomUUID();
    const nowMs = Date.now();
    await store.claim({
      key,
      fingerprint: 'fp',
      token,
      nowMs,
      leaseExpiresAtMs: nowMs + 30_000,
      expiresAtMs: nowMs + retentionMs,
    });
    await store.complete({ key, token, result: new Uint8Array([1]), nowMs, expiresAtMs: nowMs + retentionMs });
    await yieldToTimers();
  }
}

/** Writes `count` records that have already expired, `parallel` claims at a time. */
async function backlog(store: AdminStore, count: number, parallel = 1): Promise<void> {
  const nowMs = Date.now();
  for (let i = 0; i < count; i += parallel) {
    await Promise.all(
      Array.from({ length: Math.min(parallel, count - i) }, () =>
        store.claim({
          key: randomUUID(),
          fingerprint: 'fp',
          token: 't',
          nowMs: nowMs - 10_000,
          leaseExpiresAtMs: nowMs - 9_000,
          expiresAtMs: nowMs - 5_000,
        }),
      ),
    );
  }
}

interface Backend {
  name: string;
  store(table: string): AdminStore;
  rows(table: string): Promise<number>;
  drop(table: string): Promise<void>;
}

const sqlite: Backend = {
  name: 'sqlite',
  store: (table) => new SqliteStore({ path: sqliteTestPath(table), table }),
  async rows(table) {
    const db = new Database(sqliteTestPath(table), { readonly: true });
    try {
      return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    } finally {
      db.close();
    }
  },
  drop: (table) => dropSqlite(table),
};

const admin = new pg.Pool({ connectionString: postgresUrl, connectionTimeoutMillis: 5000, max: 2 });
after(() => admin.end());

const postgres: Backend = {
  name: 'postgres',
  store: (table) => new PostgresStore({ url: postgresUrl, table }),
  async rows(table) {
    const { rows } = await admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
    return Number(rows[0]?.n);
  },
  async drop(table) {
    await admin.query(`DROP TABLE IF EXISTS ${table}_journal, ${table}`);
  },
};

for (const backend of [sqlite, postgres]) {
  describe(`sweeper on ${backend.name}`, () => {
    const tables: string[] = [];
    const stores: AdminStore[] = [];
    const open = (name: string): [AdminStore, string] => {
      const table = `idem_sweep_${name}_${suffix}`;
      const store = backend.store(table);
      tables.push(table);
      stores.push(store);
      return [store, table];
    };
    after(async () => {
      for (const store of stores) await store.close();
      for (const table of tables) await backend.drop(table);
    });

    it('keeps the table bounded under constant load, where without a sweeper it grows with every key', async () => {
      const keys = 800;
      const [bare, bareTable] = open('bare');
      await load(bare, keys, 5);
      assert.equal(await backend.rows(bareTable), keys, 'without a sweeper every expired record stays');

      const [swept, sweptTable] = open('swept');
      let deleted = 0;
      const sweeper = startSweeper(swept, {
        everyMs: 5,
        batch: 100,
        onSweep: (result) => {
          deleted += result.deleted;
        },
      });
      try {
        await load(swept, keys, 5);
      } finally {
        await sweeper.stop();
      }
      const left = await backend.rows(sweptTable);
      assert.ok(left < keys / 3, `the sweeper kept the table bounded: ${left} of ${keys} rows left`);
      assert.equal(deleted + left, keys, 'onSweep reported every record it deleted');
    });

    it('ends a round after maxBatchesPerRound batches, leaving the rest of a backlog to the next round', async () => {
      const [store] = open('budget');
      await backlog(store, 50, 10);
      const rounds: SweepResult[] = [];
      const sweeper = startSweeper(store, {
        everyMs: 60_000,
        batch: 10,
        maxBatchesPerRound: 2,
        onSweep: (r) => rounds.push(r),
      });
      try {
        assert.equal(await sweeper.sweepNow(), 20);
        assert.equal(await sweeper.sweepNow(), 20);
        assert.equal(await sweeper.sweepNow(), 10, 'a batch that deleted fewer than 10 ends the round');
        assert.equal(await sweeper.sweepNow(), 0);
        assert.deepEqual(
          rounds.map((r) => [r.deleted, r.batches]),
          [
            [20, 2],
            [20, 2],
            [10, 2],
            [0, 1],
          ],
        );
      } finally {
        await sweeper.stop();
      }
    });

    it('waits in stop() for the round in flight to end', async () => {
      const [store] = open('stop');
      await backlog(store, 5);
      let open_: () => void = () => {};
      const gate = new Promise<void>((resolve) => {
        open_ = resolve;
      });
      let entered: () => void = () => {};
      const inSweep = new Promise<void>((resolve) => {
        entered = resolve;
      });
      const events: string[] = [];
      const gated = withSweep(store, async (nowMs, limit) => {
        entered();
        await gate;
        const deleted = await store.sweep?.(nowMs, limit);
        events.push('round ended');
        return deleted ?? 0;
      });
      const sweeper = startSweeper(gated, { everyMs: 60_000 });
      const round = sweeper.sweepNow();
      await inSweep;
      const stopped = sweeper.stop().then(() => events.push('stop resolved'));
      await yieldToTimers();
      events.push('gate opened');
      open_();
      await stopped;
      assert.equal(await round, 5);
      assert.deepEqual(events, ['gate opened', 'round ended', 'stop resolved']);
      assert.equal(await sweeper.sweepNow(), 0, 'a stopped sweeper sweeps no more');
    });

    it('sends a store error to onError and keeps sweeping', async () => {
      const [store] = open('errors');
      await backlog(store, 5);
      const closed = backend.store(`idem_sweep_closed_${suffix}`);
      await closed.close();
      let calls = 0;
      const flaky = withSweep(
        store,
        (nowMs, limit) => (++calls === 1 ? closed : store).sweep?.(nowMs, limit) ?? Promise.resolve(0),
      );
      const errors: unknown[] = [];
      // The sweeper's timer is unref()ed: something must keep this process alive while it works.
      const keepAlive = setInterval(() => {}, 1000);
      const swept = await new Promise<SweepResult>((resolve) => {
        const sweeper = startSweeper(flaky, {
          everyMs: 1,
          onError: (error) => errors.push(error),
          onSweep: (result) => void sweeper.stop().then(() => resolve(result)),
        });
      }).finally(() => clearInterval(keepAlive));
      assert.equal(errors.length, 1);
      assert.ok(isIdempotencyError(errors[0], ErrorCode.STORE_CLOSED), `got ${String(errors[0])}`);
      assert.equal(swept.deleted, 5, 'the round after the failed one swept the backlog');
    });
  });
}

const mysqlBackend: Backend = {
  name: 'mysql',
  store: (table) => new MysqlStore({ url: MYSQL_URL, table }),
  async rows(table) {
    const connection = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 3000 });
    try {
      const [rows] = await connection.query(`SELECT count(*) AS n FROM \`${table}\``);
      return Number((rows as { n: number }[])[0]?.n);
    } finally {
      await connection.end();
    }
  },
  async drop(table) {
    const connection = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 3000 });
    try {
      await connection.query(`DROP TABLE IF EXISTS \`${table}_journal\`, \`${table}\``);
    } finally {
      await connection.end();
    }
  },
};

for (const backend of [postgres, mysqlBackend])
  describe(`sweeper on ${backend.name}: two sweepers on one table`, () => {
    const table = `idem_sweep_pair_${suffix}`;
    const one = backend.store(table);
    const two = backend.store(table);
    after(async () => {
      await one.close();
      await two.close();
      await backend.drop(table);
    });

    it('share the backlog on separate connections, each deleting its own records, with no error', async () => {
      const records = 3000;
      await backlog(one, records, 50);
      const errors: unknown[] = [];
      // Counted by onSweep, so the sweepers' own timed rounds count too.
      const totals = { first: 0, second: 0 };
      const options = (name: keyof typeof totals) => ({
        everyMs: 1,
        batch: 50,
        maxBatchesPerRound: 5,
        onError: (e: unknown) => errors.push(e),
        onSweep: ({ deleted }: SweepResult) => {
          totals[name] += deleted;
        },
      });
      const first = startSweeper(one, options('first'));
      const second = startSweeper(two, options('second'));
      try {
        for (let left = records; left > 0; left = await backend.rows(table)) {
          await Promise.all([first.sweepNow(), second.sweepNow()]);
        }
      } finally {
        await Promise.all([first.stop(), second.stop()]);
      }
      assert.deepEqual(errors, []);
      assert.equal(totals.first + totals.second, records, 'every record was deleted once, by one sweeper');
      assert.ok(totals.first > 0 && totals.second > 0, `both made progress: ${totals.first} and ${totals.second}`);
    });
  });

describe('sweeper', () => {
  it('never runs two rounds at once in a process', async () => {
    const store = new MemoryStore();
    await backlog(store, 30);
    let inFlight = 0;
    let most = 0;
    const counted = withSweep(store, async (nowMs, limit) => {
      most = Math.max(most, ++inFlight);
      await yieldToTimers();
      const deleted = (await store.sweep(nowMs, limit)) ?? 0;
      inFlight -= 1;
      return deleted;
    });
    const sweeper = startSweeper(counted, { everyMs: 1, batch: 3 });
    const results = await Promise.all([sweeper.sweepNow(), sweeper.sweepNow(), sweeper.sweepNow()]);
    await sweeper.stop();
    assert.equal(most, 1);
    assert.equal(results.reduce((a, b) => a + b, 0) <= 30, true);
    assert.equal(results[0], 30, 'the first round swept the whole backlog, 3 at a time');
  });

  it('stops when its signal is aborted, and sweeps nothing after', async () => {
    const controller = new AbortController();
    const store = new MemoryStore();
    const sweeper = startSweeper(store, { signal: controller.signal });
    controller.abort();
    await backlog(store, 3);
    assert.equal(await sweeper.sweepNow(), 0);
    const aborted = startSweeper(store, { signal: controller.signal });
    assert.equal(await aborted.sweepNow(), 0, 'a signal aborted before the start starts a stopped sweeper');
  });

  it('never keeps a process alive: a process that only started a sweeper exits by itself', async () => {
    const exit = await runChild(idleChild, {});
    assert.equal(exit.stdout, 'started\n');
    assert.equal(exit.code, 0);
  });

  it('refuses a store without sweep(), saying it needs no sweeper', () => {
    const noSweep = { name: 'ttl-store', delete: async () => false } as unknown as AdminStore;
    assert.throws(
      () => startSweeper(noSweep),
      (error: unknown) =>
        isIdempotencyError(error, ErrorCode.INVALID_OPTIONS) &&
        /\[idem\] \[sweeper\] store "ttl-store" has no sweep\(\).*needs no sweeper/.test(error.message),
    );
  });

  for (const [options, pattern] of [
    [{ everyMs: 0 }, /everyMs must be a whole number from 1 to 2147483647, got 0/],
    [{ everyMs: 2 ** 31 }, /everyMs must be a whole number from 1/],
    [{ batch: 1.5 }, /batch must be a whole number 1 or more, got 1.5/],
    [{ maxBatchesPerRound: 0 }, /maxBatchesPerRound must be a whole number 1 or more, got 0/],
    [{ onError: 'log' }, /onError must be a function, got string/],
  ] as const) {
    it(`refuses ${JSON.stringify(options)} with INVALID_OPTIONS`, () => {
      assert.throws(
        () => startSweeper(new MemoryStore(), options as never),
        (error: unknown) => isIdempotencyError(error, ErrorCode.INVALID_OPTIONS) && pattern.test(error.message),
      );
    });
  }
});

/** `store` with its sweep replaced by `sweep` (the real store underneath). */
function withSweep(store: AdminStore, sweep: (nowMs: number, limit?: number) => Promise<number>): AdminStore {
  return {
    name: store.name,
    claim: (input) => store.claim(input),
    complete: (input) => store.complete(input),
    release: (key, token) => store.release(key, token),
    extend: (input) => store.extend(input),
    get: (key, nowMs) => store.get(key, nowMs),
    delete: (key) => store.delete(key),
    list: (options) => store.list(options),
    close: () => store.close(),
    sweep,
  };
}
