import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import type { ClaimInput } from '../../src/core/store.js';
import type { MysqlQuery } from '../../src/stores/mysql/client.js';
import { type MysqlPoolLike, MysqlStore } from '../../src/stores/mysql/index.js';
import { mysqlStatements } from '../../src/stores/mysql/sql.js';
import { runStoreConformance } from '../../src/testing/index.js';
import { MYSQL_URL } from './mysql.factory.js';

runStoreConformance({ name: 'mysql', factoryModule: new URL('./mysql.factory.ts', import.meta.url).href });

const HOUR_MS = 3_600_000;
const tables: string[] = [];

/** A fresh table name, dropped when the file's tests end. */
function freshTable(): string {
  const table = `idem_t_${randomBytes(6).toString('hex')}`;
  tables.push(table);
  return table;
}

after(async () => {
  const connection = await mysql.createConnection({ uri: MYSQL_URL });
  for (const table of tables) await connection.query(`DROP TABLE IF EXISTS \`${table}_journal\`, \`${table}\``);
  await connection.end();
});

function claimInput(key: string, nowMs: number, over: Partial<ClaimInput> = {}): ClaimInput {
  return {
    key,
    fingerprint: 'fp',
    token: randomUUID(),
    nowMs,
    leaseExpiresAtMs: nowMs + 30_000,
    expiresAtMs: nowMs + HOUR_MS,
    ...over,
  };
}

function hasCode(code: ErrorCode) {
  return (error: unknown) => {
    assert.ok(isIdempotencyError(error, code), `expected ${code}, got ${String(error)}`);
    return true;
  };
}

describe('MysqlStore', () => {
  it('refuses a table name with characters other than letters, digits and underscores, or too long for its journal', () => {
    for (const table of ['idem-records', 'a.b', 'x`; DROP TABLE y', '', 'a'.repeat(57)]) {
      assert.throws(() => new MysqlStore({ url: MYSQL_URL, table }), hasCode(ErrorCode.INVALID_OPTIONS));
    }
  });

  it('needs exactly one of pool and url', () => {
    assert.throws(() => new MysqlStore({}), hasCode(ErrorCode.INVALID_OPTIONS));
    const pool = { query: async () => [[], undefined] as [unknown, unknown] };
    assert.throws(() => new MysqlStore({ pool, url: MYSQL_URL }), hasCode(ErrorCode.INVALID_OPTIONS));
  });

  it('fails with STORE_UNAVAILABLE within a second when nothing listens on the port', async () => {
    const store = new MysqlStore({ url: 'mysql://root@127.0.0.1:1/test' });
    const started = Date.now();
    await assert.rejects(store.claim(claimInput('k', started)), hasCode(ErrorCode.STORE_UNAVAILABLE));
    await assert.rejects(store.migrate(), hasCode(ErrorCode.STORE_UNAVAILABLE));
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    await store.close();
  });

  it('fails with STORE_UNAVAILABLE after connectTimeoutMs when the server accepts but never answers', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    const store = new MysqlStore({ url: `mysql://root@127.0.0.1:${port}/test`, connectTimeoutMs: 300 });
    const started = Date.now();
    try {
      await assert.rejects(store.get('k'), hasCode(ErrorCode.STORE_UNAVAILABLE));
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    } finally {
      await store.close();
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  it('fails a statement stuck behind a row lock after queryTimeoutMs instead of hanging', async () => {
    const table = freshTable();
    const store = new MysqlStore({ url: MYSQL_URL, table, queryTimeoutMs: 300 });
    const locker = await mysql.createConnection({ uri: MYSQL_URL });
    try {
      const t = Date.now();
      const held = claimInput('locked', t);
      await store.claim(held);
      await locker.beginTransaction();
      await locker.query(`SELECT * FROM \`${table}\` WHERE idem_key = 'locked' FOR UPDATE`);
      // A claim that finds the record standing reads it without waiting for the lock.
      const rival = await store.claim(claimInput('locked', t + 1));
      assert.equal(rival.claimed, false);
      assert.equal(rival.record.token, held.token);
      const started = Date.now();
      const completion = {
        key: 'locked',
        token: held.token,
        result: new Uint8Array([1]),
        nowMs: t + 1,
        expiresAtMs: t + 60_000,
      };
      await assert.rejects(store.complete(completion), hasCode(ErrorCode.STORE_UNAVAILABLE));
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
      await locker.rollback();
      // The pool drops the timed-out connection and carries on with a fresh one.
      assert.equal((await store.claim(claimInput('other', t))).claimed, true);
    } finally {
      await locker.end();
      await store.close();
    }
  });

  it('leaves a new key to the locking claim when a rival claims it between the read and the insert', async () => {
    const table = freshTable();
    const pool = mysql.createPool({ uri: MYSQL_URL, connectTimeout: 3000 });
    const select = mysqlStatements(table).select;
    let rival: (() => Promise<unknown>) | undefined;
    // The store's read of the record runs the rival's claim right after it, once.
    const racing: MysqlPoolLike = {
      query: async (options: MysqlQuery) => {
        const answer = (await pool.query(options)) as [unknown, unknown];
        const hook = options.sql === select ? rival : undefined;
        rival = undefined;
        await hook?.();
        return answer;
      },
    };
    const store = new MysqlStore({ pool: racing, table });
    const rivalStore = new MysqlStore({ pool, table });
    try {
      await rivalStore.migrate();
      await store.migrate();
      const t = Date.now();
      const theirs = claimInput('k', t);
      rival = () => rivalStore.claim(theirs);
      const mine = await store.claim(claimInput('k', t));
      assert.equal(rival, undefined, 'the rival ran between the read and the insert');
      assert.equal(mine.claimed, false);
      assert.equal(mine.record.token, theirs.token);
    } finally {
      await store.close();
      await rivalStore.close();
      await pool.end();
    }
  });

  it('leaves a pool it was given open on close, and calls a lazy factory once', async () => {
    const pool = mysql.createPool({ uri: MYSQL_URL, connectTimeout: 3000 });
    let calls = 0;
    const store = new MysqlStore({
      pool: () => {
        calls += 1;
        return pool;
      },
      table: freshTable(),
    });
    try {
      await store.claim(claimInput('a', Date.now()));
      await store.get('a');
      await store.close();
      assert.equal(calls, 1);
      const [rows] = await pool.query('SELECT 1 AS one');
      assert.deepEqual(rows, [{ one: 1 }]);
      await assert.rejects(store.get('a'), hasCode(ErrorCode.STORE_CLOSED));
    } finally {
      await pool.end();
    }
  });

  it('tries a lazy pool factory again after it threw', async () => {
    const pool = mysql.createPool({ uri: MYSQL_URL, connectTimeout: 3000 });
    let calls = 0;
    const store = new MysqlStore({
      pool: async (): Promise<MysqlPoolLike> => {
        calls += 1;
        if (calls === 1) throw new Error('secrets not loaded yet');
        return pool;
      },
      table: freshTable(),
    });
    try {
      await assert.rejects(store.get('a'), hasCode(ErrorCode.STORE_UNAVAILABLE));
      assert.equal(await store.get('a'), null);
    } finally {
      await store.close();
      await pool.end();
    }
  });

  it('returns numbers and bytes from a pool set to return BIGINT as strings and rows as arrays', async () => {
    const pool = mysql.createPool({
      uri: MYSQL_URL,
      supportBigNumbers: true,
      bigNumberStrings: true,
      rowsAsArray: true,
    });
    const store = new MysqlStore({ pool, table: freshTable() });
    try {
      const t = 4_102_444_800_000; // 2100-01-01, past 2^32 seconds and 2^41 ms
      const claimed = await store.claim(claimInput('k', t, { token: 'a' }));
      assert.equal(claimed.record.createdAtMs, t);
      assert.equal(claimed.record.attempts, 1);
      await store.complete({
        key: 'k',
        token: 'a',
        result: new Uint8Array([0, 255]),
        nowMs: t + 1,
        expiresAtMs: t + 9,
      });
      const record = await store.get('k', t + 2);
      assert.equal(record?.expiresAtMs, t + 9);
      assert.equal(typeof record?.updatedAtMs, 'number');
      assert.deepEqual([...(record?.result ?? [])], [0, 255]);
    } finally {
      await store.close();
      await pool.end();
    }
  });

  it('extends to the same lease end on a pool without CLIENT_FOUND_ROWS', async () => {
    const pool = mysql.createPool({ uri: MYSQL_URL, flags: ['-FOUND_ROWS'] });
    const store = new MysqlStore({ pool, table: freshTable() });
    try {
      const t = Date.now();
      await store.claim(claimInput('k', t, { token: 'a' }));
      const extension = { key: 'k', token: 'a', nowMs: t + 5, leaseExpiresAtMs: t + 60_000, expiresAtMs: t + HOUR_MS };
      assert.equal(await store.extend(extension), true);
      assert.equal(await store.extend(extension), true);
      assert.equal(await store.extend({ ...extension, token: 'b' }), false);
      const losers = await Promise.all(Array.from({ length: 20 }, () => store.claim(claimInput('k', t + 6))));
      assert.ok(losers.every((outcome) => !outcome.claimed && outcome.record.token === 'a'));
    } finally {
      await store.close();
      await pool.end();
    }
  });

  it("claims correctly under MariaDB's SIMULTANEOUS_ASSIGNMENT mode", async (context) => {
    const connection = await mysql.createConnection({ uri: MYSQL_URL });
    const store = new MysqlStore({ pool: connection, table: freshTable() });
    try {
      const [[server]] = (await connection.query('SELECT VERSION() AS version')) as unknown as [[{ version: string }]];
      if (!server.version.includes('MariaDB')) {
        context.skip('SIMULTANEOUS_ASSIGNMENT is a MariaDB mode');
        return;
      }
      await connection.query(`SET SESSION sql_mode = CONCAT(@@sql_mode, ',SIMULTANEOUS_ASSIGNMENT')`);
      const t = Date.now();
      await store.claim(claimInput('k', t, { token: 'old', leaseExpiresAtMs: t + 100 }));
      assert.equal((await store.claim(claimInput('k', t + 99))).claimed, false);
      const takeover = await store.claim(claimInput('k', t + 100, { token: 'new', leaseExpiresAtMs: t + 500 }));
      assert.deepEqual(
        [takeover.claimed, takeover.record.token, takeover.record.attempts, takeover.record.leaseExpiresAtMs],
        [true, 'new', 2, t + 500],
      );
      const expired = t + 100 + HOUR_MS;
      const replaced = await store.claim(claimInput('k', expired, { token: 'fresh', fingerprint: 'other' }));
      assert.deepEqual(
        [replaced.claimed, replaced.record.attempts, replaced.record.fingerprint, replaced.record.createdAtMs],
        [true, 1, 'other', expired],
      );
    } finally {
      await store.close();
      await connection.end();
    }
  });

  it('refuses a key longer than 255 bytes with KEY_INVALID rather than truncating it', async () => {
    const store = new MysqlStore({ url: MYSQL_URL, table: freshTable() });
    try {
      await assert.rejects(store.claim(claimInput('k'.repeat(256), Date.now())), hasCode(ErrorCode.KEY_INVALID));
      assert.equal((await store.claim(claimInput('k'.repeat(255), Date.now()))).claimed, true);
    } finally {
      await store.close();
    }
  });

  it('stores a 6 MiB result', async () => {
    const store = new MysqlStore({ url: MYSQL_URL, table: freshTable() });
    try {
      const t = Date.now();
      const result = new Uint8Array(randomBytes(6 * 1024 * 1024));
      await store.claim(claimInput('big', t, { token: 'a' }));
      assert.equal(await store.complete({ key: 'big', token: 'a', result, nowMs: t, expiresAtMs: t + HOUR_MS }), true);
      const back = await store.get('big');
      assert.ok(back?.result !== null && back?.result !== undefined);
      assert.ok(Buffer.from(back.result).equals(Buffer.from(result)));
    } finally {
      await store.close();
    }
  });

  it('lets 20 stores create the same table at once', async () => {
    const table = freshTable();
    const stores = Array.from({ length: 20 }, () => new MysqlStore({ url: MYSQL_URL, table, maxConnections: 1 }));
    try {
      await Promise.all(stores.map((store) => store.migrate()));
      const outcomes = await Promise.all(stores.map((store) => store.claim(claimInput('k', Date.now()))));
      assert.equal(outcomes.filter((outcome) => outcome.claimed).length, 1);
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });
});
