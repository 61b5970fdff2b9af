import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AdminStore } from '../../src/core/store.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';

const directory = join(tmpdir(), 'idem-sqlite-tests');

/** One file per namespace, so every process of a multi-process scenario opens the same file and table. */
export function sqliteTestPath(namespace: string): string {
  return join(directory, `${namespace}.db`);
}

export async function createStore(namespace: string): Promise<AdminStore> {
  mkdirSync(directory, { recursive: true });
  return new SqliteStore({ path: sqliteTestPath(namespace), table: `idem_${namespace}` });
}

export async function dropStore(namespace: string): Promise<void> {
  const path = sqliteTestPath(namespace);
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${path}${suffix}`, { force: true });
}
