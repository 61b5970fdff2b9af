import mysql from 'mysql2/promise';
import { mysqlOutbox } from '../../src/messaging/index.js';
import type { OutboxConformanceTarget } from '../../src/testing/index.js';
import { MYSQL_URL } from '../stores/mysql.factory.js';

/** An outbox on `table`, over a pool of its own; transactions run on connections of that pool. */
export async function createOutbox(table: string): Promise<OutboxConformanceTarget<mysql.PoolConnection>> {
  const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 8, connectTimeout: 3000 });
  const outbox = mysqlOutbox(pool, { table });
  return {
    outbox,
    async transaction(body) {
      const connection = await pool.getConnection();
      try {
        await connection.beginTransaction();
        const value = await body(connection);
        await connection.commit();
        return value;
      } catch (error) {
        await connection.rollback();
        throw error;
      } finally {
        connection.release();
      }
    },
    async close() {
      await outbox.close();
      await pool.end();
    },
  };
}

export async function dropOutbox(table: string): Promise<void> {
  const connection = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 3000 });
  try {
    await connection.query(`DROP TABLE IF EXISTS \`${table}\``);
  } finally {
    await connection.end();
  }
}
