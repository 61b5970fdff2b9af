import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import { sqliteOutbox } from '../../src/messaging/index.js';
import { runOutboxConformance } from '../../src/testing/index.js';
import { refusedFirstOpens } from '../stores/sqlite-first-opens.js';
import { dropOutbox, outboxPath } from './outbox-sqlite.factory.js';

const factory = new URL('./outbox-sqlite.factory.ts', import.meta.url).href;
runOutboxConformance('sqlite (its own connection)', factory);
runOutboxConformance('sqlite (the application connection)', factory, {
  createExport: 'createSharedOutbox',
  skip: { processes: 'the same as with its own connection: each process has a connection of its own' },
});

const tables: string[] = [];
after(async () => {
  for (const table of tables) await dropOutbox(table);
});

function open(): { db: Database.Database; table: string } {
  const table = `ob_${randomBytes(5).toString('hex')}`;
  tables.push(table);
  const db = new Database(outboxPath(table), { timeout: 5000 });
  db.pragma('journal_mode = WAL');
  return { db, table };
}

const ok = async (messages: readonly unknown[]) => messages.map(() => ({ ok: true as const }));

describe('sqlite outbox', () => {
  it('opens a new file from many processes at once: none is refused while they switch it to WAL', async () => {
    const [processes, rounds] = [8, 100];
    const freshPath = () => {
      const table = `ob_${randomBytes(5).toString('hex')}`;
      tables.push(table);
      mkdirSync(dirname(outboxPath(table)), { recursive: true });
      return outboxPath(table);
    };
    const refused = await refusedFirstOpens({ kind: 'outbox', processes, rounds, freshPath });
    assert.deepEqual(refused, [], `${refused.length} of ${processes * rounds} first opens were refused`);
  });

  it('enqueues with enqueueSync inside db.transaction, creating the table there, and keeps nothing on rollback', async () => {
    const { db, table } = open();
    db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, state TEXT)');
    const outbox = sqliteOutbox(db, { table });
    const pay = db.transaction((orderId: number, fail: boolean) => {
      db.prepare('INSERT INTO orders (id, state) VALUES (?, ?)').run(orderId, 'paid');
      const id = outbox.enqueueSync(db, { topic: 'orders.paid', id: `paid-${orderId}`, payload: { orderId } });
      if (fail) throw new Error('refused');
      return id;
    });
    assert.throws(() => pay(1, true), /refused/);
    assert.equal(pay(2, false), 'paid-2');
    assert.throws(
      () => db.transaction(() => outbox.enqueueSync(db, { topic: '', payload: 1 }))(),
      (error: unknown) => isIdempotencyError(error, ErrorCode.INVALID_OPTIONS),
    );
    const ids: string[] = [];
    await outbox.relay({
      limit: 10,
      nowMs: Date.now(),
      retryAtMs: () => undefined,
      publish: async (messages) => {
        ids.push(...messages.map((message) => message.id));
        return ok(messages);
      },
    });
    assert.deepEqual(ids, ['paid-2']);
    assert.deepEqual(db.prepare('SELECT id FROM orders').all(), [{ id: 2 }]);
    await outbox.close();
    db.close();
  });

  it("lets the application write while a pass publishes, on the pass's connection or another", async () => {
    const { db, table } = open();
    const shared = sqliteOutbox(db, { table });
    const own = sqliteOutbox(outboxPath(table), { table });
    shared.enqueueSync(db, { topic: 't', id: 'first', payload: 1 });
    for (const outbox of [shared, own]) {
      await outbox.relay({
        limit: 10,
        nowMs: Date.now(),
        retryAtMs: () => undefined,
        publish: async (messages) => {
          // No write lock is held while publish runs: this commits at once, on the application's connection.
          db.transaction(() => shared.enqueueSync(db, { topic: 't', payload: 2 }))();
          return ok(messages);
        },
      });
    }
    assert.deepEqual(await own.counts(), { pending: 1, published: 2, dead: 0 });
    await shared.close();
    await own.close();
    db.close();
  });

  it('refuses a bad table name, a bad lease and something that is not a database', () => {
    for (const table of ['bad-name', 'sqlite_master', '1abc', 'a'.repeat(49)]) {
      assert.throws(() => sqliteOutbox(':memory:', { table }), /table name/);
    }
    assert.throws(() => sqliteOutbox(':memory:', { leaseMs: 0 }), /leaseMs/);
    // The lease is renewed every leaseMs / 3: a timer past 2^31 - 1 ms fires every 1 ms in Node.
    assert.throws(() => sqliteOutbox(':memory:', { leaseMs: 7_000_000_000 }), /leaseMs .* at most 2147483647/);
    assert.throws(() => sqliteOutbox({} as never), /better-sqlite3 Database or the path/);
  });

  it('opens its own connection from a path, creates the table, and ends the connection on close', async () => {
    const { db, table } = open();
    const outbox = sqliteOutbox(outboxPath(table), { table });
    await outbox.ensureSchema();
    const { n } = db.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE tbl_name = ?`).get(table) as { n: number };
    assert.ok(n >= 6, 'the table and its indexes');
    await outbox.close();
    await assert.rejects(outbox.counts(), (error: unknown) => isIdempotencyError(error, ErrorCode.STORE_CLOSED));
    db.close();
  });
});
