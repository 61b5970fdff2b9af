import mysql from 'mysql2/promise';
import type { AdminStore } from '../../src/core/store.js';
import { MysqlStore } from '../../src/stores/mysql/index.js';

/** The MariaDB / MySQL server the tests use; `IDEM_MYSQL_URL` points them elsewhere. */
export const MYSQL_URL = process.env.IDEM_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

export async function createStore(namespace: string): Promise<AdminStore> {
  return new MysqlStore({ url: MYSQL_URL, table: `idem_records_${namespace}` });
}

export async function dropStore(namespace: string): Promise<void> {
  const connection = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 3000 });
  try {
    // The journal first: its foreign key references the records table.
    await connection.query(`DROP TABLE IF EXISTS \`idem_records_${namespace}_journal\`, \`idem_records_${namespace}\``);
  } finally {
    await connection.end();
  }
}
