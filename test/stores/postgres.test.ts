import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import type { ClaimInput } from '../../src/core/store.js';
import { PostgresStore } from '../../src/stores/postgres/index.js';
import { runStoreConformance } from '../../src/testing/index.js';
import { postgresUrl } from './postgres.factory.js';

runStoreConformance({
  name: 'postgres',
  factoryModule: new URL('./postgres.factory.ts', import.meta.url).href,
});

const HOUR_MS = 3_600_000;
const admin = new pg.Pool({ connectionString: postgresUrl, connectionTimeoutMillis: 5000 });
const tables: string[] = [];
after(async () => {
  for (const table of tables) await admin.query(`DROP TABLE IF EXISTS ${table}`);
  await admin.end();
});

/** A fresh table name, dropped after the tests. */
function freshTable(): string {
  const table = `idem_pg_${randomBytes(5).toString('hex')}`;
  tables.push(`"${table}_journal"`, `"${table}"`);
  return table;
}

function claimInput(key: string, token: string, nowMs: number): ClaimInput {
  return { key, fingerprint: 'fp', token, nowMs, leaseExpiresAtMs: nowMs + 30_000, expiresAtMs: nowMs + HOUR_MS };
}

function isCode(code: ErrorCode) {
  return (error: unknown) => {
    assert.ok(isIdempotencyError(error, code), `expected ${code}, got ${String(error)}`);
    return true;
  };
}

describe('postgres store', () => {
  it('refuses a table or schema name that is not letters, digits and underscores', () => {
    for (const table of ['idem-records', 'a.b', 'x"; DROP TABLE t; --', '', 'a'.repeat(51)]) {
      assert.throws(() => new PostgresStore({ pool: admin, table }), isCode(ErrorCode.INVALID_OPTIONS), table);
    }
    assert.throws(() => new PostgresStore({ pool: admin, schema: 'my schema' }), /schema name "my schema"/);
    assert.throws(() => new PostgresStore({ pool: admin, table: 'bad-name' }), /letters, digits or underscores/);
  });

  it('asks for exactly one of pool and url', () => {
    assert.throws(() => new PostgresStore({}), isCode(ErrorCode.INVALID_OPTIONS));
    assert.throws(() => new PostgresStore({ pool: admin, url: postgresUrl }), isCode(ErrorCode.INVALID_OPTIONS));
  });

  it('rejects promptly with STORE_UNAVAILABLE when nothing listens on the port', async () => {
    const store = new PostgresStore({ url: 'postgres://postgres@127.0.0.1:1/test' });
    const startMs = Date.now();
    await assert.rejects(store.claim(claimInput('k', 'a', Date.now())), isCode(ErrorCode.STORE_UNAVAILABLE));
    await assert.rejects(store.get('k'), isCode(ErrorCode.STORE_UNAVAILABLE));
    assert.ok(Date.now() - startMs < 2000, `took ${Date.now() - startMs} ms`);
    await store.close();
  });

  it('rejects with STORE_UNAVAILABLE after connectTimeoutMs when the server accepts but never answers', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    assert.ok(typeof address === 'object' && address !== null);
    const store = new PostgresStore({
      url: `postgres://postgres@127.0.0.1:${address.port}/test`,
      connectTimeoutMs: 300,
    });
    const startMs = Date.now();
    try {
      await assert.rejects(store.claim(claimInput('k', 'a', Date.now())), isCode(ErrorCode.STORE_UNAVAILABLE));
      assert.ok(Date.now() - startMs < 2000, `took ${Date.now() - startMs} ms`);
    } finally {
      await store.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('leaves a pool it was given open on close, and calls a lazy factory once', async () => {
    const pool = new pg.Pool({ connectionString: postgresUrl, connectionTimeoutMillis: 5000 });
    let calls = 0;
    const store = new PostgresStore({
      table: freshTable(),
      pool: () => {
        calls += 1;
        return pool;
      },
    });
    assert.equal(calls, 0, 'the factory waits for first use');
    await store.claim(claimInput('a', 't', Date.now()));
    await store.get('a');
    await store.close();
    assert.equal(calls, 1);
    assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1);
    await pool.end();
  });

  it('migrates one table from many stores at once without error', async () => {
    const table = freshTable();
    const stores = Array.from({ length: 8 }, () => new PostgresStore({ url: postgresUrl, table }));
    try {
      await Promise.all(stores.map((store) => store.migrate()));
      const outcomes = await Promise.all(stores.map((store, i) => store.claim(claimInput('k', `t-${i}`, Date.now()))));
      assert.equal(outcomes.filter((outcome) => outcome.claimed).length, 1);
      const { rows } = await admin.query('SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY indexname', [
        table,
      ]);
      assert.deepEqual(
        rows.map((row) => row.indexname),
        [`${table}_expires_idx`, `${table}_pkey`],
      );
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it('keeps its table in the given schema, and retries a migration that failed until the schema exists', async () => {
    const schema = `idem_schema_${randomBytes(4).toString('hex')}`;
    const store = new PostgresStore({ url: postgresUrl, schema, table: 'Records' });
    try {
      await assert.rejects(store.migrate(), (error: unknown) => {
        assert.ok(isIdempotencyError(error, ErrorCode.STORE_MISCONFIGURED));
        assert.match(error.message, /schema .* does not exist: create the schema, or fix the `schema` option/);
        return true;
      });
      await admin.query(`CREATE SCHEMA "${schema}"`);
      assert.equal((await store.claim(claimInput('k', 'a', Date.now()))).claimed, true);
      const { rows } = await admin.query(`SELECT token FROM "${schema}"."Records"`);
      assert.deepEqual(rows, [{ token: 'a' }]);
    } finally {
      await store.close();
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  });

  /**
   * Runs `change` in a rival transaction left open while our claim starts, so the claim's
   * snapshot misses it and its write waits on the rival's row; then commits the rival.
   */
  async function claimAgainstRival(
    store: PostgresStore,
    change: (rival: pg.PoolClient) => Promise<unknown>,
    nowMs: number,
  ) {
    const rival = await admin.connect();
    try {
      await rival.query('BEGIN');
      await change(rival);
      const claiming = store.claim(claimInput('k', 'ours', nowMs));
      await new Promise((resolve) => setTimeout(resolve, 100));
      await rival.query('COMMIT');
      return await claiming;
    } finally {
      rival.release();
    }
  }

  it('reports the record a concurrent claim committed after its snapshot, never a second winner', async () => {
    const table = freshTable();
    const store = new PostgresStore({ url: postgresUrl, table });
    await store.migrate();
    const t = Date.now();
    // Our INSERT waits on the rival's row; once it commits, ON CONFLICT finds a live record it must
    // not take, the statement returns no row, and the claim looks again.
    const outcome = await claimAgainstRival(
      store,
      (rival) =>
        rival.query(
          `INSERT INTO "${table}" (key, fingerprint, state, token, lease_expires_at_ms, expires_at_ms, result, created_at_ms, updated_at_ms, attempts)
           VALUES ('k', 'fp', 'in_progress', 'rival', $1, $2, NULL, $3, $3, 1)`,
          [t + 30_000, t + HOUR_MS, t],
        ),
      t + 1,
    );
    assert.equal(outcome.claimed, false);
    assert.equal(outcome.record.token, 'rival');
    await store.close();
  });

  it('looks again when a takeover it saw as possible was taken by a concurrent claim first', async () => {
    const table = freshTable();
    const store = new PostgresStore({ url: postgresUrl, table });
    const t = Date.now();
    await store.claim({ ...claimInput('k', 'crashed', t), leaseExpiresAtMs: t + 10 });
    const outcome = await claimAgainstRival(
      store,
      (rival) =>
        rival.query(`UPDATE "${table}" SET token = 'rival', lease_expires_at_ms = $1 WHERE key = 'k'`, [t + HOUR_MS]),
      t + 20,
    );
    assert.equal(outcome.claimed, false);
    assert.equal(outcome.record.token, 'rival');
    await store.close();
  });

  it('does not sweep an expired record while a claim is renewing it', async () => {
    const table = freshTable();
    const store = new PostgresStore({ url: postgresUrl, table });
    const t = Date.now();
    await store.claim({ ...claimInput('k', 'old', t), expiresAtMs: t + 10 });
    const renewing = await admin.connect();
    try {
      await renewing.query('BEGIN');
      await renewing.query(`UPDATE "${table}" SET token = 'new', expires_at_ms = $1 WHERE key = 'k'`, [t + HOUR_MS]);
      assert.equal(await store.sweep(t + 10), 0);
      await renewing.query('COMMIT');
    } finally {
      renewing.release();
    }
    assert.equal((await store.get('k', t + 10))?.token, 'new');
    await store.close();
  });

  it('stores and returns an 8 MiB result', async () => {
    const store = new PostgresStore({ url: postgresUrl, table: freshTable() });
    const t = Date.now();
    const result = new Uint8Array(randomBytes(8 * 1024 * 1024));
    await store.claim(claimInput('big', 'a', t));
    assert.equal(await store.complete({ key: 'big', token: 'a', result, nowMs: t, expiresAtMs: t + HOUR_MS }), true);
    const back = await store.get('big');
    assert.ok(back?.result && Buffer.from(back.result).equals(result));
    await store.close();
  });
});
