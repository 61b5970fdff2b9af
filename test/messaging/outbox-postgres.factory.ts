import pg from 'pg';
import { postgresOutbox } from '../../src/messaging/index.js';
import type { OutboxConformanceTarget } from '../../src/testing/index.js';
import { postgresUrl } from '../stores/postgres.factory.js';

/** An outbox on `table`, over a pool of its own; transactions run on connections of that pool. */
export async function createOutbox(table: string): Promise<OutboxConformanceTarget<pg.PoolClient>> {
  const pool = new pg.Pool({ connectionString: postgresUrl, max: 8, connectionTimeoutMillis: 5000 });
  pool.on('error', () => {});
  const outbox = postgresOutbox(pool, { table });
  return {
    outbox,
    async transaction(body) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const value = await body(client);
        await client.query('COMMIT');
        return value;
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      } finally {
        client.release();
      }
    },
    async close() {
      await outbox.close();
      await pool.end();
    },
  };
}

export async function dropOutbox(table: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(`DROP TABLE IF EXISTS "${table}"`);
  } finally {
    await client.end();
  }
}
