import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import { mysqlOutbox } from '../../src/messaging/index.js';
import { runOutboxConformance } from '../../src/testing/index.js';
import { MYSQL_URL } from '../stores/mysql.factory.js';
import { dropOutbox } from './outbox-mysql.factory.js';

runOutboxConformance('mysql', new URL('./outbox-mysql.factory.ts', import.meta.url).href);

const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 4, connectTimeout: 3000 });
const tables: string[] = [];
after(async () => {
  for (const table of tables) await dropOutbox(table);
  await pool.end();
});

function freshTable(): string {
  const table = `ob_${randomBytes(5).toString('hex')}`;
  tables.push(table);
  return table;
}

function isCode(code: ErrorCode) {
  return (error: unknown) => {
    assert.ok(isIdempotencyError(error, code), `expected ${code}, got ${String(error)}`);
    return true;
  };
}

describe('mysql outbox', () => {
  it('refuses a bad table name and something that is not a pool', () => {
    for (const table of ['bad-name', 'a`b', '', 'a'.repeat(65)]) {
      assert.throws(() => mysqlOutbox(pool, { table }), isCode(ErrorCode.INVALID_OPTIONS), table);
    }
    assert.throws(() => mysqlOutbox({} as never), /mysql2\/promise Pool/);
  });

  it('opens its own pool from a URL, creates the table, and ends the pool on close', async () => {
    const table = freshTable();
    const outbox = mysqlOutbox(MYSQL_URL, { table });
    await outbox.ensureSchema();
    const [rows] = await pool.query(
      'SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
      [table],
    );
    assert.deepEqual(rows, [{ n: 1 }]);
    await outbox.close();
    await assert.rejects(outbox.counts(), isCode(ErrorCode.STORE_CLOSED));
  });

  it('lets an enqueue commit while a pass holds messages (the pass takes no gap locks)', async () => {
    const table = freshTable();
    const outbox = mysqlOutbox(pool, { table });
    const connection = await pool.getConnection();
    await connection.query('SET SESSION innodb_lock_wait_timeout = 2');
    const enqueue = async (id: string, key?: string) => {
      await connection.beginTransaction();
      await outbox.enqueue(connection, { topic: 't', id, key, payload: id });
      await connection.commit();
    };
    await enqueue('held', 'k');
    await enqueue('next', 'k');
    const outcome = await outbox.relay({
      limit: 10,
      nowMs: Date.now(),
      retryAtMs: () => undefined,
      publish: async (messages) => {
        await enqueue('during', 'k');
        await enqueue('other');
        return messages.map(() => ({ ok: true }));
      },
    });
    connection.release();
    assert.deepEqual(outcome, { claimed: 1, published: 1, failed: 0, dead: 0 });
    assert.deepEqual(await outbox.counts(), { pending: 3, published: 1, dead: 0 });
  });

  it('reports STORE_MISCONFIGURED for an unknown database and STORE_UNAVAILABLE when nothing listens', async () => {
    const wrong = new URL(MYSQL_URL);
    wrong.pathname = '/no_such_database_idem';
    const misconfigured = mysqlOutbox(wrong.href, { table: freshTable() });
    await assert.rejects(misconfigured.counts(), isCode(ErrorCode.STORE_MISCONFIGURED));
    await misconfigured.close();
    const down = mysqlOutbox('mysql://root@127.0.0.1:1/test', { table: freshTable() });
    await assert.rejects(down.counts(), isCode(ErrorCode.STORE_UNAVAILABLE));
    await down.close();
  });
});
