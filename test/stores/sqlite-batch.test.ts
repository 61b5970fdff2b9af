import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import type { ClaimInput, CompleteInput } from '../../src/core/store.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { completeRecord } from '../../src/stores/sqlite/sql.js';
import { dropStore, sqliteTestPath } from './sqlite.factory.js';

/** Group commit: the writes issued in one turn of the event loop go to SQLite in one transaction. */

const namespaces: string[] = [];
function freshPath(): string {
  const namespace = `b_${randomBytes(6).toString('hex')}`;
  namespaces.push(namespace);
  mkdirSync(join(tmpdir(), 'idem-sqlite-tests'), { recursive: true });
  return sqliteTestPath(namespace);
}
after(async () => {
  for (const namespace of namespaces) await dropStore(namespace);
});

const t = Date.now();
function claimInput(key: string, token: string, fingerprint = 'fp'): ClaimInput {
  return { key, fingerprint, token, nowMs: t, leaseExpiresAtMs: t + 30_000, expiresAtMs: t + 3_600_000 };
}
function completeInput(key: string, token: string, byte = 1): CompleteInput {
  return { key, token, result: new Uint8Array([byte]), nowMs: t + 1, expiresAtMs: t + 3_600_000 };
}

function hasCode(code: ErrorCode, text?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(isIdempotencyError(error, code), `expected ${code}, got ${String(error)}`);
    if (text !== undefined) assert.match(error.message, text);
    return true;
  };
}

describe('sqlite store: group commit', () => {
  it('claims a new key once when 50 claims of it arrive in one turn; the others see the winner in progress', async () => {
    const store = new SqliteStore({ path: freshPath() });
    await store.migrate();
    const tokens = Array.from({ length: 50 }, (_, i) => `t${i}`);
    const answers = await Promise.all(tokens.map((token) => store.claim(claimInput('k', token))));
    const winners = answers.filter((answer) => answer.claimed);
    assert.equal(winners.length, 1);
    const winner = winners[0]?.record.token;
    assert.equal(winner, 't0', 'the batch decides in arrival order');
    for (const answer of answers.filter((a) => !a.claimed)) {
      assert.equal(answer.record.state, 'in_progress');
      assert.equal(answer.record.token, winner);
    }
    assert.equal((await store.get('k'))?.token, winner);
    await store.close();
  });

  it('writes the claims and completions issued in one turn in one transaction', async () => {
    const db = new Database(':memory:');
    let transactions = 0;
    const database = {
      prepare: (source: string) => db.prepare(source),
      transaction<A extends unknown[], R>(fn: (...args: A) => R) {
        const transaction = db.transaction(fn);
        return {
          immediate: (...args: A): R => {
            transactions += 1;
            return transaction.immediate(...args);
          },
        };
      },
      get inTransaction() {
        return db.inTransaction;
      },
    };
    const store = new SqliteStore({ database });
    await store.migrate();
    transactions = 0;
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    await Promise.all(keys.map((key) => store.claim(claimInput(key, 't'))));
    assert.equal(transactions, 1, 'twenty claims, one commit');
    const completed = await Promise.all(keys.map((key) => store.complete(completeInput(key, 't'))));
    assert.deepEqual(
      completed,
      keys.map(() => true),
    );
    assert.equal(transactions, 2, 'twenty completions, one commit');
    await store.close();
    db.close();
  });

  it('lands a batch of claims, completions, an extension and a release, each with its own answer', async () => {
    const path = freshPath();
    const store = new SqliteStore({ path });
    for (const key of ['a', 'b', 'c', 'd', 'e']) await store.claim(claimInput(key, `${key}1`));
    const [completedA, staleB, claimedF, completedC, extendedD, releasedE, staleE] = await Promise.all([
      store.complete(completeInput('a', 'a1', 7)),
      store.complete(completeInput('b', 'stale')),
      store.claim(claimInput('f', 'f1')),
      store.complete(completeInput('c', 'c1', 8)),
      store.extend({ key: 'd', token: 'd1', nowMs: t + 1, leaseExpiresAtMs: t + 90_000, expiresAtMs: t + 3_600_000 }),
      store.release('e', 'e1'),
      store.complete(completeInput('e', 'e1')),
    ]);
    assert.deepEqual(
      [completedA, staleB, claimedF.claimed, completedC, extendedD, releasedE, staleE],
      [true, false, true, true, true, true, false],
    );
    const peek = new Database(path, { readonly: true });
    const rows = peek
      .prepare('SELECT key, state, token, result, lease_expires_at_ms FROM idem_records ORDER BY key')
      .all();
    peek.close();
    assert.deepEqual(rows, [
      { key: 'a', state: 'completed', token: 'a1', result: Buffer.from([7]), lease_expires_at_ms: t + 30_000 },
      { key: 'b', state: 'in_progress', token: 'b1', result: null, lease_expires_at_ms: t + 30_000 },
      { key: 'c', state: 'completed', token: 'c1', result: Buffer.from([8]), lease_expires_at_ms: t + 30_000 },
      { key: 'd', state: 'in_progress', token: 'd1', result: null, lease_expires_at_ms: t + 90_000 },
      { key: 'f', state: 'in_progress', token: 'f1', result: null, lease_expires_at_ms: t + 30_000 },
    ]);
    await store.close();
  });

  it('fails only the write whose statement throws, and commits the rest of its batch', async () => {
    const store = new SqliteStore({ path: freshPath() });
    await store.claim(claimInput('a', 'a1'));
    const results = await Promise.allSettled([
      store.claim(claimInput('x', 'x1')),
      // NOT NULL on fingerprint: SQLite undoes this one statement and the transaction goes on.
      store.claim(claimInput('bad', 'bad1', null as unknown as string)),
      // Not bytes: the driver refuses to bind it before SQLite runs anything.
      store.complete({ ...completeInput('a', 'a1'), result: {} as Uint8Array }),
      store.claim(claimInput('y', 'y1')),
    ]);
    assert.deepEqual(
      results.map((result) => result.status),
      ['fulfilled', 'rejected', 'rejected', 'fulfilled'],
    );
    assert.equal((await store.get('x'))?.token, 'x1');
    assert.equal(await store.get('bad'), null);
    assert.equal((await store.get('a'))?.state, 'in_progress');
    assert.equal((await store.get('y'))?.token, 'y1');
    assert.equal(await store.complete(completeInput('a', 'a1')), true, 'the failed completion can be tried again');
    await store.close();
  });

  it('fails every write of a batch with STORE_UNAVAILABLE while another connection holds the write lock, and stores none', async () => {
    const path = freshPath();
    const store = new SqliteStore({ path, busyTimeoutMs: 100 });
    await store.claim(claimInput('held', 'h1'));
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    const results = await Promise.allSettled([
      store.claim(claimInput('a', 'a1')),
      store.complete(completeInput('held', 'h1')),
      store.claim(claimInput('b', 'b1')),
      store.release('held', 'h1'),
    ]);
    other.exec('ROLLBACK');
    other.close();
    for (const result of results) {
      assert.equal(result.status, 'rejected');
      hasCode(ErrorCode.STORE_UNAVAILABLE, /locked by another connection/)(result.reason);
    }
    assert.equal(await store.get('a'), null);
    assert.equal(await store.get('b'), null);
    assert.equal((await store.get('held'))?.state, 'in_progress');

    const [claimed, completed] = await Promise.all([
      store.claim(claimInput('a', 'a1')),
      store.complete(completeInput('held', 'h1')),
    ]);
    assert.equal(claimed.claimed, true, 'the next batch works once the lock is gone');
    assert.equal(completed, true);
    await store.close();
  });

  it('fails the whole batch, and stores none of it, when SQLite rolls the transaction back under one write', async () => {
    const db = new Database(':memory:');
    const table = 'full_records';
    // The completion with token 'boom' fails as a full disk does: SQLite rolls back the whole transaction.
    const database = {
      prepare(source: string) {
        const statement = db.prepare(source);
        if (source !== completeRecord(table)) return statement;
        return {
          get: (...params: unknown[]) => statement.get(...params),
          all: (...params: unknown[]) => statement.all(...params),
          run: (...params: unknown[]) => {
            if (params[4] !== 'boom') return statement.run(...params);
            db.exec('ROLLBACK');
            throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
          },
        };
      },
      transaction: <A extends unknown[], R>(fn: (...args: A) => R) => db.transaction(fn),
      get inTransaction() {
        return db.inTransaction;
      },
    };
    const store = new SqliteStore({ database, table });
    await store.claim(claimInput('held', 'h1'));
    const results = await Promise.allSettled([
      store.claim(claimInput('before', 'b1')),
      store.complete(completeInput('held', 'boom')),
      store.claim(claimInput('after', 'a1')),
    ]);
    for (const result of results) {
      assert.equal(result.status, 'rejected');
      hasCode(ErrorCode.STORE_UNAVAILABLE)(result.reason);
    }
    assert.equal(await store.get('before'), null);
    assert.equal(await store.get('after'), null, 'nothing ran in autocommit after the rollback');
    assert.equal(db.inTransaction, false);
    await store.close();
    db.close();
  });

  it('commits the writes still queued when the store closes, on its own file and on a connection passed in', async () => {
    const path = freshPath();
    const own = new SqliteStore({ path });
    await own.claim(claimInput('a', 'a1'));
    const ownWrites = Promise.all([own.claim(claimInput('b', 'b1')), own.complete(completeInput('a', 'a1'))]);
    await own.close();
    const [claimed, completed] = await ownWrites;
    assert.equal(claimed.claimed, true);
    assert.equal(completed, true);
    const peek = new Database(path, { readonly: true });
    assert.deepEqual(peek.prepare('SELECT key, state FROM idem_records ORDER BY key').all(), [
      { key: 'a', state: 'completed' },
      { key: 'b', state: 'in_progress' },
    ]);
    peek.close();

    const db = new Database(':memory:');
    const given = new SqliteStore({ database: db });
    await given.migrate();
    const givenClaim = given.claim(claimInput('c', 'c1'));
    await given.close();
    assert.equal((await givenClaim).claimed, true);
    assert.equal(db.prepare('SELECT token FROM idem_records WHERE key = ?').pluck().get('c'), 'c1');
    db.close();
  });
});
