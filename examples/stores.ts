// The same idempotent function on any store, chosen by a URL: memory:, sqlite:<file>,
// postgres://..., redis://... or mysql://... (default: SQLite in a temporary directory).
// Three concurrent calls and two retries run the work once. The script ends by itself only
// because it closes the store: a PostgreSQL, Redis or MySQL store keeps the process alive until then.
// Run it with `npx tsx examples/stores.ts [url]`; each server store needs its driver (npm i pg, ioredis, mysql2).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Store } from '../src/core/index.js';
import { idempotent } from '../src/core/index.js';
import { MemoryStore } from '../src/stores/memory/index.js';
import { MysqlStore } from '../src/stores/mysql/index.js';
import { PostgresStore } from '../src/stores/postgres/index.js';
import { RedisStore } from '../src/stores/redis/index.js';
import { SqliteStore } from '../src/stores/sqlite/index.js';

const dir = mkdtempSync(join(tmpdir(), 'idem-stores-example-'));
const url = process.argv[2] ?? `sqlite:${join(dir, 'idem.db')}`;

function storeFor(url: string): Store {
  const scheme = url.slice(0, url.indexOf(':'));
  switch (scheme) {
    case 'memory':
      return new MemoryStore();
    case 'sqlite':
      return new SqliteStore({ path: url.slice('sqlite:'.length), table: 'idem_example' });
    case 'postgres':
    case 'postgresql':
      return new PostgresStore({ url, table: 'idem_example' });
    case 'redis':
    case 'rediss':
      return new RedisStore({ url, prefix: 'idem_example:' });
    case 'mysql':
      return new MysqlStore({ url, table: 'idem_example' });
    default:
      throw new Error(`${url}: use memory:, sqlite:<file>, postgres://, redis:// or mysql://`);
  }
}

const store = storeFor(url);
let runs = 0;
const exportReport = idempotent(
  async (reportId: string) => {
    runs++;
    await new Promise((resolve) => setTimeout(resolve, 50)); // the export takes a while
    return { reportId, rows: 1024 };
  },
  { store, name: 'export-report', key: (reportId) => reportId, onInProgress: 'wait' },
);

const reportId = `report-${randomUUID()}`; // a new key on every run of the example
await Promise.all([exportReport(reportId), exportReport(reportId), exportReport(reportId)]);
await exportReport(reportId);
await exportReport(reportId);
console.log(`${store.name.padEnd(8)} 5 calls -> the export ran ${runs} time${runs === 1 ? '' : 's'}`);

await store.close();
rmSync(dir, { recursive: true, force: true });
if (runs !== 1) process.exitCode = 1;
