import type { AdminStore } from '../../src/core/store.js';
import { PostgresStore } from '../../src/stores/postgres/index.js';

/** The local test server; override with IDEM_POSTGRES_URL. */
export const postgresUrl = process.env.IDEM_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export async function createStore(namespace: string): Promise<AdminStore> {
  return new PostgresStore({ url: postgresUrl, table: `idem_${namespace}` });
}

export async function dropStore(namespace: string): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    // The journal first: its foreign key references the records table.
    await client.query(`DROP TABLE IF EXISTS "idem_${namespace}_journal", "idem_${namespace}"`);
  } finally {
    await client.end();
  }
}
