import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import { postgresOutbox } from '../../src/messaging/index.js';
import { runOutboxConformance } from '../../src/testing/index.js';
import { postgresUrl } from '../stores/postgres.factory.js';
import { dropOutbox } from './outbox-postgres.factory.js';

runOutboxConformance('postgres', new URL('./outbox-postgres.factory.ts', import.meta.url).href);

const admin = new pg.Pool({ connectionString: postgresUrl, connectionTimeoutMillis: 5000 });
const tables: string[] = [];
after(async () => {
  for (const table of tables) await dropOutbox(table);
  await admin.end();
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

describe('postgres outbox', () => {
  it('refuses a bad table name and something that is not a pool', () => {
    for (const table of ['bad-name', 'a"b', '', 'a'.repeat(49)]) {
      assert.throws(() => postgresOutbox(admin, { table }), isCode(ErrorCode.INVALID_OPTIONS), table);
    }
    assert.throws(() => postgresOutbox({} as never), /pg Pool/);
    assert.throws(() => postgresOutbox(admin, { maxPayloadBytes: 0 }), /maxPayloadBytes/);
  });

  it('opens its own pool from a URL, creates the table with its indexes, and ends the pool on close', async () => {
    const table = freshTable();
    const outbox = postgresOutbox(postgresUrl, { table });
    await outbox.ensureSchema();
    const { rows } = await admin.query('SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY indexname', [
      table,
    ]);
    assert.deepEqual(
      rows.map((row) => row.indexname),
      ['dead_idx', 'due_idx', 'id_key', 'key_idx', 'pkey', 'published_idx'].map((suffix) => `${table}_${suffix}`),
    );
    await outbox.close();
    await assert.rejects(outbox.counts(), isCode(ErrorCode.STORE_CLOSED));
  });

  it('creates the table once when many outboxes start at once', async () => {
    const table = freshTable();
    const outboxes = Array.from({ length: 6 }, () => postgresOutbox(postgresUrl, { table, maxConnections: 1 }));
    await Promise.all(outboxes.map((outbox) => outbox.ensureSchema()));
    await Promise.all(outboxes.map((outbox) => outbox.close()));
  });

  it('lets an enqueue commit while a pass holds messages', async () => {
    const table = freshTable();
    const outbox = postgresOutbox(admin, { table });
    const client = await admin.connect();
    const enqueue = async (id: string) => {
      await client.query('BEGIN');
      await outbox.enqueue(client, { topic: 't', id, payload: id });
      await client.query('COMMIT');
    };
    await enqueue('held');
    const outcome = await outbox.relay({
      limit: 10,
      nowMs: Date.now(),
      retryAtMs: () => undefined,
      publish: async (messages) => {
        await client.query("SET lock_timeout = '2s'");
        await enqueue('during');
        return messages.map(() => ({ ok: true }));
      },
    });
    client.release();
    assert.deepEqual(outcome, { claimed: 1, published: 1, failed: 0, dead: 0 });
    assert.deepEqual(await outbox.counts(), { pending: 1, published: 1, dead: 0 });
  });

  it('reports STORE_MISCONFIGURED for an unknown database and STORE_UNAVAILABLE when nothing listens', async () => {
    const wrong = new URL(postgresUrl);
    wrong.pathname = '/no_such_database_idem';
    const misconfigured = postgresOutbox(wrong.href, { table: freshTable() });
    await assert.rejects(misconfigured.counts(), isCode(ErrorCode.STORE_MISCONFIGURED));
    await misconfigured.close();
    const down = postgresOutbox('postgres://postgres@127.0.0.1:1/test', { table: freshTable() });
    await assert.rejects(
      down.relay({ limit: 1, nowMs: 0, retryAtMs: () => undefined, publish: async () => [] }),
      isCode(ErrorCode.STORE_UNAVAILABLE),
    );
    await down.close();
  });
});
