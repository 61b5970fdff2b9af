import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import type { ClaimInput } from '../../src/core/store.js';
import { SqliteStore, type SqliteStoreOptions } from '../../src/stores/sqlite/index.js';
import { migrationStatements } from '../../src/stores/sqlite/migrations.js';
import { selectRecord } from '../../src/stores/sqlite/sql.js';
import { runStoreConformance } from '../../src/testing/index.js';
import { dropStore, sqliteTestPath } from './sqlite.factory.js';
import { refusedFirstOpens } from './sqlite-first-opens.js';

runStoreConformance({
  name: 'sqlite',
  factoryModule: new URL('./sqlite.factory.ts', import.meta.url).href,
});

const namespaces: string[] = [];
/** A fresh file path for one test; the files are removed when the suite ends. */
function freshPath(): string {
  const namespace = `s_${randomBytes(6).toString('hex')}`;
  namespaces.push(namespace);
  mkdirSync(join(tmpdir(), 'idem-sqlite-tests'), { recursive: true });
  return sqliteTestPath(namespace);
}
after(async () => {
  for (const namespace of namespaces) await dropStore(namespace);
});

function claimInput(key: string, token: string, nowMs = Date.now()): ClaimInput {
  return { key, fingerprint: 'fp', token, nowMs, leaseExpiresAtMs: nowMs + 30_000, expiresAtMs: nowMs + 3_600_000 };
}

function hasCode(code: ErrorCode, text?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(isIdempotencyError(error, code), `expected ${code}, got ${String(error)}`);
    if (text !== undefined) assert.match(error.message, text);
    return true;
  };
}

describe('sqlite store', () => {
  it('refuses a table name with characters other than letters, digits and underscore', () => {
    for (const table of ['idem-records', 'idem records', 'x;DROP TABLE y', '', '1abc', 'sqlite_idem']) {
      assert.throws(() => new SqliteStore({ path: ':memory:', table }), hasCode(ErrorCode.INVALID_OPTIONS, /table/));
    }
    assert.doesNotThrow(() => new SqliteStore({ path: ':memory:', table: 'Idem_Records_2' }));
  });

  it('refuses a path and a database given together, and a synchronous setting other than NORMAL or FULL', () => {
    const db = new Database(':memory:');
    assert.throws(
      () => new SqliteStore({ path: ':memory:', database: db }),
      hasCode(ErrorCode.INVALID_OPTIONS, /either path/),
    );
    assert.throws(
      () => new SqliteStore({ path: ':memory:', synchronous: 'OFF' as SqliteStoreOptions['synchronous'] }),
      hasCode(ErrorCode.INVALID_OPTIONS, /synchronous/),
    );
    assert.throws(() => new SqliteStore({ busyTimeoutMs: -1 }), hasCode(ErrorCode.INVALID_OPTIONS, /busyTimeoutMs/));
    db.close();
  });

  it('opens a new file from many processes at once: none is refused while they switch it to WAL', async () => {
    const [processes, rounds] = [8, 100];
    const refused = await refusedFirstOpens({ kind: 'store', processes, rounds, freshPath });
    assert.deepEqual(refused, [], `${refused.length} of ${processes * rounds} first opens were refused`);
  });

  it('opens its file lazily in WAL mode, creates the table, and removes the WAL when it closes', async () => {
    const path = freshPath();
    const store = new SqliteStore({ path, table: 'my_records', synchronous: 'FULL' });
    assert.equal(existsSync(path), false, 'nothing is opened before first use');
    await store.migrate();
    await store.migrate();
    assert.equal((await store.claim(claimInput('k', 'a'))).claimed, true);

    const peek = new Database(path, { readonly: true });
    assert.equal(peek.pragma('journal_mode', { simple: true }), 'wal');
    const tables = peek.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
    assert.deepEqual(tables, ['my_records', 'my_records_journal']);
    peek.close();

    await store.close();
    assert.equal(existsSync(`${path}-wal`), false, 'the last connection closed and checkpointed the WAL');
  });

  it('adds the journal to a database made before it, keeping the records, and deletes entries with their record', async () => {
    const path = freshPath();
    const older = new Database(path);
    // The schema as it shipped before journals: the records table and its index only.
    for (const statement of migrationStatements('idem_records').slice(0, 2)) older.prepare(statement).run();
    const t = Date.now();
    older
      .prepare(`INSERT INTO idem_records VALUES ('old', 'fp', 'in_progress', 'a', ?, ?, NULL, ?, ?, 1)`)
      .run(t + 30_000, t + 3_600_000, t, t);
    older.close();

    const store = new SqliteStore({ path });
    assert.equal(await store.append({ key: 'old', token: 'a', seq: 0, data: new Uint8Array([1]), nowMs: t }), true);
    assert.deepEqual((await store.runs()).keys, ['old']);
    const peek = new Database(path, { readonly: true });
    assert.equal(peek.prepare('SELECT count(*) FROM idem_records_journal').pluck().get(), 1);
    await store.release('old', 'a');
    assert.equal(
      peek.prepare('SELECT count(*) FROM idem_records_journal').pluck().get(),
      0,
      'released with the record',
    );
    peek.close();
    await store.close();
  });

  it('answers STORE_UNAVAILABLE within the busy timeout while another connection holds the write lock', async () => {
    const path = freshPath();
    const store = new SqliteStore({ path, busyTimeoutMs: 200 });
    await store.migrate();
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    const started = Date.now();
    await assert.rejects(
      store.claim(claimInput('k', 'a')),
      hasCode(ErrorCode.STORE_UNAVAILABLE, /locked by another connection .* busyTimeoutMs \(200 ms\)/),
    );
    const waitedMs = Date.now() - started;
    assert.ok(waitedMs >= 150 && waitedMs < 2000, `waited ${waitedMs} ms`);
    other.exec('COMMIT');
    assert.equal((await store.claim(claimInput('k', 'a'))).claimed, true, 'works again once the lock is gone');
    other.close();
    await store.close();
  });

  it('sees a claim made through another connection on the same file, and refuses its own stale token', async () => {
    const path = freshPath();
    const store = new SqliteStore({ path, busyTimeoutMs: 5000 });
    await store.migrate();
    const other = new SqliteStore({ path });
    const t = Date.now();
    assert.equal((await other.claim(claimInput('k', 'theirs', t))).claimed, true);
    const mine = await store.claim(claimInput('k', 'mine', t + 1));
    assert.equal(mine.claimed, false);
    assert.equal(mine.record.token, 'theirs');
    assert.equal(
      await store.complete({ key: 'k', token: 'mine', result: new Uint8Array([1]), nowMs: t + 2, expiresAtMs: t + 9 }),
      false,
    );
    await other.close();
    await store.close();
  });

  it('uses a database passed through a lazy factory on first use, and leaves it open on close', async () => {
    const db = new Database(':memory:');
    let calls = 0;
    const store = new SqliteStore({
      database: () => {
        calls += 1;
        return db;
      },
      table: 'lazy_records',
    });
    assert.equal(calls, 0);
    const t = Date.now();
    await store.claim(claimInput('k', 'a', t));
    await store.get('k');
    assert.equal(calls, 1);
    assert.equal(db.prepare('SELECT token FROM lazy_records WHERE key = ?').pluck().get('k'), 'a');
    await store.close();
    assert.equal(db.open, true);
    await assert.rejects(store.get('k'), hasCode(ErrorCode.STORE_CLOSED));
    db.close();
  });

  it('returns numbers, not bigints, from a connection that reads integers safely', async () => {
    const db = new Database(':memory:');
    db.defaultSafeIntegers(true);
    const store = new SqliteStore({ database: db });
    const t = Date.now();
    await store.claim(claimInput('k', 'a', t));
    await store.complete({ key: 'k', token: 'a', result: new Uint8Array([1]), nowMs: t + 1, expiresAtMs: t + 60_000 });
    const record = await store.get('k');
    assert.equal(record?.createdAtMs, t);
    assert.equal(record?.expiresAtMs, t + 60_000);
    assert.equal(record?.attempts, 1);
    const page = await store.list({ nowMs: t });
    assert.equal(page.records[0]?.updatedAtMs, t + 1);
    await store.close();
    db.close();
  });

  it('fails with STORE_UNAVAILABLE when the file cannot be opened, and tries again on the next call', async () => {
    const directory = join(tmpdir(), 'idem-sqlite-tests', `missing_${randomBytes(6).toString('hex')}`);
    const store = new SqliteStore({ path: join(directory, 'idem.db') });
    await assert.rejects(
      store.claim(claimInput('k', 'a')),
      hasCode(ErrorCode.STORE_UNAVAILABLE, /\[sqlite\] claim failed: .*open/i),
    );
    mkdirSync(directory, { recursive: true });
    assert.equal((await store.claim(claimInput('k', 'a'))).claimed, true);
    await store.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it('answers a replay and a key in progress without the write lock, while another connection holds it', async () => {
    const path = freshPath();
    const store = new SqliteStore({ path, busyTimeoutMs: 0 });
    const t = Date.now();
    await store.claim(claimInput('done', 'a', t));
    await store.complete({ key: 'done', token: 'a', result: new Uint8Array([7]), nowMs: t, expiresAtMs: t + 60_000 });
    await store.claim(claimInput('held', 'b', t));
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    try {
      const replay = await store.claim(claimInput('done', 'c', t + 1));
      assert.equal(replay.claimed, false);
      assert.equal(replay.record.state, 'completed');
      assert.deepEqual([...(replay.record.result ?? [])], [7]);
      const busy = await store.claim(claimInput('held', 'd', t + 1));
      assert.equal(busy.claimed, false);
      assert.equal(busy.record.token, 'b');
      // A claim that writes still waits for the lock (here: none, so it fails at once).
      await assert.rejects(store.claim(claimInput('new', 'e', t + 1)), hasCode(ErrorCode.STORE_UNAVAILABLE, /locked/));
    } finally {
      other.exec('ROLLBACK');
      other.close();
      await store.close();
    }
  });

  it('leaves a new key to the locked claim when a rival claims it between the read and the insert', async () => {
    const db = new Database(':memory:');
    let rival: (() => void) | undefined;
    // The store's read of the record runs the rival's claim right after it, once.
    const database = {
      prepare(source: string) {
        const statement = db.prepare(source);
        if (source !== selectRecord('race_records')) return statement;
        return {
          run: (...params: unknown[]) => statement.run(...params),
          all: (...params: unknown[]) => statement.all(...params),
          get: (...params: unknown[]) => {
            const row = statement.get(...params);
            const hook = rival;
            rival = undefined;
            hook?.();
            return row;
          },
        };
      },
      transaction: <A extends unknown[], R>(fn: (...args: A) => R) => db.transaction(fn),
    };
    const store = new SqliteStore({ database, table: 'race_records' });
    const rivalStore = new SqliteStore({ database: db, table: 'race_records' });
    await rivalStore.migrate();
    const t = Date.now();
    rival = () => {
      db.prepare(
        `INSERT INTO race_records (key, fingerprint, state, token, lease_expires_at_ms, expires_at_ms, created_at_ms, updated_at_ms, attempts)
         VALUES ('k', 'fp', 'in_progress', 'rival', ?, ?, ?, ?, 1)`,
      ).run(t + 30_000, t + 3_600_000, t, t);
    };
    const answer = await store.claim(claimInput('k', 'mine', t));
    assert.equal(answer.claimed, false);
    assert.equal(answer.record.token, 'rival');
    assert.equal(rival, undefined, 'the rival ran between the read and the insert');
    await store.close();
    await rivalStore.close();
    db.close();
  });

  it('keeps records for the life of the store with path ":memory:"', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    await store.claim(claimInput('k', 'a'));
    assert.equal((await store.get('k'))?.token, 'a');
    await store.close();
    await store.close();
  });
});
