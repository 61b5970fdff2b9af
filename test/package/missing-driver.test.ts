// A store whose driver is not installed says which `npm i` to run, to a library caller
// (STORE_UNAVAILABLE) and in the CLI's one line, instead of "check that the server is running".
// The built package is copied to a temporary folder with no node_modules above it, so no driver
// can be found, as after `npm i idem --omit=optional`. Needs `npm run build` first.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Store } from '../../src/core/store.js';

const dist = fileURLToPath(new URL('../../dist/', import.meta.url));
if (!existsSync(join(dist, 'cli', 'store-url.js'))) throw new Error('dist/ is missing: run `npm run build` first.');
const copy = mkdtempSync(join(tmpdir(), 'idem-no-drivers-'));
cpSync(dist, join(copy, 'dist'), { recursive: true });
writeFileSync(join(copy, 'package.json'), JSON.stringify({ name: 'idem', type: 'module' }));
after(() => rmSync(copy, { recursive: true, force: true }));

/** A module of the copied package, typed as its source. */
async function load<T>(path: string): Promise<T> {
  return (await import(pathToFileURL(join(copy, 'dist', path)).href)) as T;
}

const cases = [
  {
    kind: 'sqlite',
    install: 'better-sqlite3@12',
    url: `sqlite:${join(copy, 'idem.db')}`,
    open: async () => {
      const { SqliteStore } = await load<typeof import('../../src/stores/sqlite/index.js')>('stores/sqlite/index.js');
      return new SqliteStore({ path: join(copy, 'idem.db') });
    },
  },
  {
    kind: 'postgres',
    install: 'pg',
    url: process.env.IDEM_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    open: async (url: string) => {
      const { PostgresStore } =
        await load<typeof import('../../src/stores/postgres/index.js')>('stores/postgres/index.js');
      return new PostgresStore({ url });
    },
  },
  {
    kind: 'redis',
    install: 'ioredis',
    url: process.env.IDEM_REDIS_URL ?? 'redis://127.0.0.1:6379',
    open: async (url: string) => {
      const { RedisStore } = await load<typeof import('../../src/stores/redis/index.js')>('stores/redis/index.js');
      return new RedisStore({ url });
    },
  },
  {
    kind: 'mysql',
    install: 'mysql2',
    url: process.env.IDEM_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
    open: async (url: string) => {
      const { MysqlStore } = await load<typeof import('../../src/stores/mysql/index.js')>('stores/mysql/index.js');
      return new MysqlStore({ url });
    },
  },
] as const;

for (const { kind, install, url, open } of cases) {
  const driver = install.replace(/@.*$/, '');
  describe(`the ${kind} store without ${driver} installed`, () => {
    it(`refuses with STORE_UNAVAILABLE and says to run npm i ${install}`, async () => {
      const store: Store = await open(url);
      await assert.rejects(store.get('any-key'), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'STORE_UNAVAILABLE');
        assert.match(error.message, new RegExp(`^\\[idem\\] \\[${kind}\\] its driver ${driver} is not installed`));
        assert.ok(error.message.includes(`run npm i ${install},`), error.message);
        assert.doesNotMatch(error.message, /reachable/);
        return true;
      });
      await store.close();
    });

    it(`makes the idem command name npm i ${install}, not a server to start`, async () => {
      const { openStore, parseStoreUrl } = await load<typeof import('../../src/cli/store-url.js')>('cli/store-url.js');
      await assert.rejects(openStore(parseStoreUrl(url)), (error: Error) => {
        assert.equal(error.name, 'CliError');
        assert.ok(
          error.message.startsWith(
            `the ${kind} store needs its driver, ${driver}, which is not installed: run npm i ${install} `,
          ),
          error.message,
        );
        assert.doesNotMatch(error.message, /server is running/);
        return true;
      });
    });
  });
}
