/**
 * A child process for the SQLite first-open race: for each line `<path>` on stdin, it opens a new
 * SqliteStore on that file, reads one key, closes it, and prints `ok` or the error's code and message.
 */
import { createInterface } from 'node:readline';
import { SqliteStore } from '../../src/stores/sqlite/index.js';

process.stdout.write('ready\n');
for await (const path of createInterface({ input: process.stdin })) {
  const store = new SqliteStore({ path });
  try {
    await store.get('first');
    process.stdout.write('ok\n');
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    process.stdout.write(`${code} ${String(message).replace(/\n/g, ' ')}\n`);
  } finally {
    await store.close();
  }
}
