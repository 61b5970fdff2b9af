import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import type { ClaimInput, Store } from '../../src/core/store.js';
import { MysqlStore } from '../../src/stores/mysql/index.js';
import { PostgresStore } from '../../src/stores/postgres/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { MYSQL_URL } from './mysql.factory.js';
import { postgresUrl } from './postgres.factory.js';
import { freePort, waitForPort } from './private-server.js';
import { redisUrl } from './redis.factory.js';

/** Configuration mistakes are not outages: each network store tells them apart, from ping and from a claim. */

function claimInput(key: string): ClaimInput {
  const nowMs = Date.now();
  return { key, fingerprint: 'fp', token: 't', nowMs, leaseExpiresAtMs: nowMs + 30_000, expiresAtMs: nowMs + 60_000 };
}

/** Asserts that `store` refuses ping and claim with STORE_MISCONFIGURED, a message matching `pattern` and the driver error as cause. */
async function assertMisconfigured(store: Store, pattern: RegExp): Promise<void> {
  const misconfigured = (error: unknown) => {
    assert.ok(isIdempotencyError(error, ErrorCode.STORE_MISCONFIGURED), `expected STORE_MISCONFIGURED, got ${error}`);
    assert.match(error.message, pattern);
    assert.match(error.message, /configuration mistake, not an outage/);
    assert.ok(error.cause instanceof Error, 'the driver error is the cause');
    return true;
  };
  try {
    assert.equal(typeof store.ping, 'function');
    await assert.rejects(store.ping?.() ?? Promise.resolve(), misconfigured);
    await assert.rejects(store.claim(claimInput('k')), misconfigured);
  } finally {
    await store.close();
  }
}

function withPath(url: string, path: string): string {
  const parsed = new URL(url);
  parsed.pathname = path;
  return parsed.href;
}

function withUser(url: string, user: string, password = ''): string {
  const parsed = new URL(url);
  parsed.username = user;
  parsed.password = password;
  return parsed.href;
}

const suffix = randomBytes(4).toString('hex');

describe('postgres store: configuration mistakes', () => {
  const admin = new pg.Pool({ connectionString: postgresUrl, connectionTimeoutMillis: 5000 });
  const role = `idem_limited_${suffix}`;
  const schema = `idem_locked_${suffix}`;
  after(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
    await admin.end();
  });

  it('reports a database that does not exist as STORE_MISCONFIGURED, naming it and what to check', async () => {
    const store = new PostgresStore({ url: withPath(postgresUrl, `/idem_no_such_db_${suffix}`) });
    await assertMisconfigured(
      store,
      /database "idem_no_such_db_\w+" does not exist: check the database name in the store URL/,
    );
  });

  it('reports a role that does not exist as STORE_MISCONFIGURED', async () => {
    const store = new PostgresStore({ url: withUser(postgresUrl, `idem_no_such_role_${suffix}`) });
    await assertMisconfigured(store, /role "idem_no_such_role_\w+" does not exist: check the user in the store URL/);
  });

  it('reports a user that may not create the table as STORE_MISCONFIGURED, saying what to grant', async () => {
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.query(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
    const store = new PostgresStore({ url: withUser(postgresUrl, role), schema });
    await assertMisconfigured(store, /permission denied for schema idem_locked_\w+: grant the store's user/);
  });

  it('answers ping on a working server, and STORE_UNAVAILABLE when nothing listens', async () => {
    const table = `idem_ping_${suffix}`;
    const store = new PostgresStore({ url: postgresUrl, table });
    try {
      await store.ping();
      const { rows } = await admin.query('SELECT to_regclass($1) IS NOT NULL AS exists', [table]);
      assert.equal(rows[0].exists, true, 'ping created the table');
    } finally {
      await store.close();
      await admin.query(`DROP TABLE IF EXISTS "${table}_journal", "${table}"`);
    }
    const down = new PostgresStore({ url: 'postgres://postgres@127.0.0.1:1/test' });
    await assert.rejects(down.ping(), (error: unknown) => isIdempotencyError(error, ErrorCode.STORE_UNAVAILABLE));
    await down.close();
  });
});

describe('mysql store: configuration mistakes', () => {
  const user = `idem_limited_${suffix}`;
  let admin: mysql.Connection;
  before(async () => {
    admin = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 3000 });
  });
  after(async () => {
    await admin.query(`DROP USER IF EXISTS '${user}'@'127.0.0.1'`);
    await admin.end();
  });

  it('reports a database that does not exist as STORE_MISCONFIGURED, naming it and what to check', async () => {
    const store = new MysqlStore({ url: withPath(MYSQL_URL, `/idem_no_such_db_${suffix}`) });
    await assertMisconfigured(
      store,
      /Unknown database 'idem_no_such_db_\w+': check the database name in the store URL/,
    );
  });

  it('reports a wrong password as STORE_MISCONFIGURED', async () => {
    const store = new MysqlStore({ url: withUser(MYSQL_URL, 'root', `wrong-${suffix}`) });
    await assertMisconfigured(store, /Access denied for user 'root'.*: check the user and password in the store URL/);
  });

  it('reports a user that may not create the table as STORE_MISCONFIGURED, saying what to grant', async () => {
    const database = new URL(MYSQL_URL).pathname.slice(1);
    await admin.query(`CREATE USER '${user}'@'127.0.0.1'`);
    await admin.query(`GRANT SELECT ON \`${database}\`.* TO '${user}'@'127.0.0.1'`);
    const store = new MysqlStore({ url: withUser(MYSQL_URL, user), table: `idem_denied_${suffix}` });
    await assertMisconfigured(store, /CREATE command denied to user .*: grant the store's user/);
  });

  it('answers ping on a working server', async () => {
    const table = `idem_ping_${suffix}`;
    const store = new MysqlStore({ url: MYSQL_URL, table });
    try {
      await store.ping();
    } finally {
      await store.close();
      await admin.query(`DROP TABLE IF EXISTS \`${table}_journal\`, \`${table}\``);
    }
  });
});

describe('redis store: configuration mistakes', () => {
  const password = `pw-${suffix}`;
  let server: ChildProcess | undefined;
  let port = 0;
  before(async () => {
    // A private server that requires a password; the shared one has none.
    port = await freePort();
    server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', password, '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    await waitForPort(port);
  });
  after(() => {
    server?.kill();
  });

  it('reports a missing password as STORE_MISCONFIGURED', async () => {
    const store = new RedisStore({ url: `redis://127.0.0.1:${port}` });
    await assertMisconfigured(store, /NOAUTH Authentication required: the server requires a password/);
  });

  it('reports a wrong password as STORE_MISCONFIGURED', async () => {
    const store = new RedisStore({ url: `redis://:wrong@127.0.0.1:${port}` });
    await assertMisconfigured(store, /WRONGPASS .*: check the user and password in the store URL/);
  });

  it('answers ping with the right password', async () => {
    const store = new RedisStore({ url: `redis://:${password}@127.0.0.1:${port}` });
    await store.ping();
    await store.close();
  });

  it('refuses a database number the server does not have, and writes nothing to database 0', async () => {
    const prefix = `idem_test:misconfigured_${suffix}:`;
    const url = new URL(redisUrl);
    url.pathname = '/99';
    const store = new RedisStore({ url: url.href, prefix });
    await assertMisconfigured(store, /DB index is out of range: the database number in the store URL does not exist/);
    const db0 = new Redis(redisUrl, { connectTimeout: 3000, maxRetriesPerRequest: 1 });
    try {
      assert.deepEqual(await db0.keys(`${prefix}*`), [], 'no record landed in database 0');
    } finally {
      db0.disconnect();
    }
  });
});
