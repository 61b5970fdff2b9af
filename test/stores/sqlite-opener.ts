/**
 * A child process for the SQLite first-open race (see sqlite-first-opens.ts). `argv[2]` names
 * what it opens: `store` (a SqliteStore) or `outbox` (a SQLite outbox). For each line `<path>` on
 * stdin it opens a new one on that file, makes one call, closes it, and prints `ok` or the error's
 * code and message.
 */
import { createInterface } from 'node:readline';
import { sqliteOutbox } from '../../src/messaging/index.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';

const kind = process.argv[2];

async function openAndCall(path: string): Promise<void> {
  if (kind === 'store') {
    const store = new SqliteStore({ path });
    try {
      await store.get('first');
    } finally {
      await store.close();
    }
  } else {
    const outbox = sqliteOutbox(path, { table: 'first_open' });
    try {
      await outbox.counts();
    } finally {
      await outbox.close();
    }
  }
}

process.stdout.write('ready\n');
for await (const path of createInterface({ input: process.stdin })) {
  try {
    await openAndCall(path);
    process.stdout.write('ok\n');
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    process.stdout.write(`${code} ${String(message).replace(/\n/g, ' ')}\n`);
  }
}
