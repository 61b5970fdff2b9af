// The atomic inbox (src/messaging/sql-inbox.ts) on PostgreSQL, MariaDB/MySQL and SQLite: the
// handler's writes and the inbox row commit together or not at all.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { isIdempotencyError } from '../../src/core/errors.js';
import { SqlInbox } from '../../src/messaging/sql-inbox.js';
import { mysqlSteps } from '../../src/workflow/sql/mysql-steps.js';
import { postgresSteps } from '../../src/workflow/sql/postgres-steps.js';
import { sqliteSteps } from '../../src/workflow/sql/sqlite-steps.js';
import type { StepDatabase } from '../../src/workflow/sql/step-database.js';

const POSTGRES_URL = process.env.IDEM_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const MYSQL_URL = process.env.IDEM_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

interface Backend {
  /** The step database over the inbox table, and a way to add one ledger row on the handler's tx. */
  open(
    table: string,
    ledger: string,
  ): Promise<{
    database: StepDatabase<unknown>;
    write(tx: unknown, id: string): Promise<void>;
    count(): Promise<number>;
    close(): Promise<void>;
  }>;
}

const backends: Record<string, Backend> = {
  postgres: {
    async open(table, ledger) {
      const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 4 });
      await pool.query(`CREATE TABLE ${ledger} (id text NOT NULL)`);
      return {
        database: postgresSteps(pool, { table }) as StepDatabase<unknown>,
        write: async (tx, id) => void (await (tx as pg.PoolClient).query(`INSERT INTO ${ledger} VALUES ($1)`, [id])),
        count: async () => Number((await pool.query(`SELECT count(*) AS n FROM ${ledger}`)).rows[0].n),
        close: async () => {
          await pool.query(`DROP TABLE IF EXISTS ${ledger}, ${table}`);
          await pool.end();
        },
      };
    },
  },
  mysql: {
    async open(table, ledger) {
      const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 4 });
      await pool.query(`CREATE TABLE ${ledger} (id VARCHAR(64) NOT NULL) ENGINE=InnoDB`);
      return {
        database: mysqlSteps(pool, { table }) as StepDatabase<unknown>,
        write: async (tx, id) =>
          void (await (tx as mysql.PoolConnection).query(`INSERT INTO ${ledger} VALUES (?)`, [id])),
        count: async () => {
          const [rows] = await pool.query(`SELECT count(*) AS n FROM ${ledger}`);
          return Number((rows as { n: number }[])[0]?.n);
        },
        close: async () => {
          await pool.query(`DROP TABLE IF EXISTS ${ledger}, ${table}`);
          await pool.end();
        },
      };
    },
  },
  sqlite: {
    async open(table, ledger) {
      const directory = join(tmpdir(), 'idem-sql-inbox');
      mkdirSync(directory, { recursive: true });
      const path = join(directory, `${table}.db`);
      const db = new Database(path);
      db.exec(`CREATE TABLE ${ledger} (id TEXT NOT NULL)`);
      return {
        database: sqliteSteps(db, { table }) as StepDatabase<unknown>,
        write: async (tx, id) => void (tx as Database.Database).prepare(`INSERT INTO ${ledger} VALUES (?)`).run(id),
        count: async () => Number((db.prepare(`SELECT count(*) AS n FROM ${ledger}`).get() as { n: number }).n),
        close: async () => {
          db.close();
          rmSync(path, { force: true });
        },
      };
    },
  },
};

for (const [name, backend] of Object.entries(backends)) {
  describe(`the atomic inbox on ${name}`, () => {
    const suffix = randomBytes(4).toString('hex');
    let opened: Awaited<ReturnType<Backend['open']>>;
    let inbox: SqlInbox<unknown>;

    before(async () => {
      opened = await backend.open(`idem_inbox_${suffix}`, `ledger_${suffix}`);
      inbox = new SqlInbox({ database: opened.database, consumer: 'orders' });
    });
    after(async () => opened.close());

    it('commits the effect once and answers a redelivery as a duplicate with the first value', async () => {
      const first = await inbox.consume({ id: 'a' }, async (tx) => {
        await opened.write(tx, 'a');
        return 'stocked';
      });
      const again = await inbox.consume({ id: 'a' }, async (tx) => {
        await opened.write(tx, 'a');
        return 'again';
      });
      assert.deepEqual(
        [first, again],
        [
          { kind: 'processed', value: 'stocked' },
          { kind: 'duplicate', value: 'stocked' },
        ],
      );
      assert.equal(await opened.count(), 1);
    });

    it('rolls the effect back with the inbox row when the handler throws, so the next delivery runs it', async () => {
      const before = await opened.count();
      await assert.rejects(
        inbox.consume({ id: 'b' }, async (tx) => {
          await opened.write(tx, 'b');
          throw new Error('card declined');
        }),
        /card declined/,
      );
      assert.equal(await opened.count(), before);
      const retried = await inbox.consume({ id: 'b' }, async (tx) => opened.write(tx, 'b'));
      assert.equal(retried.kind, 'processed');
      assert.equal(await opened.count(), before + 1);
    });

    it('lets one of eight concurrent deliveries of a message commit, the others answer duplicate', async () => {
      const before = await opened.count();
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          inbox.consume({ id: 'c' }, async (tx) => {
            await opened.write(tx, 'c');
            return i;
          }),
        ),
      );
      assert.equal(outcomes.filter((o) => o.kind === 'processed').length, 1);
      assert.equal(outcomes.filter((o) => o.kind === 'duplicate').length, 7);
      assert.equal(await opened.count(), before + 1);
    });

    it('refuses a reused id with another payload as a mismatch, writing nothing', async () => {
      await inbox.consume({ id: 'd', payload: { qty: 1 } }, async (tx) => opened.write(tx, 'd'));
      const before = await opened.count();
      const outcome = await inbox.consume({ id: 'd', payload: { qty: 2 } }, async (tx) => opened.write(tx, 'd'));
      assert.deepEqual(outcome, { kind: 'mismatch' });
      assert.equal(await opened.count(), before);
    });

    it('commits the effect of a handler whose value cannot be stored, and answers its redelivery as a duplicate', async () => {
      const before = await opened.count();
      // A driver's result object, say, with functions in it: the effect is done, only the value is lost.
      const first = await inbox.consume({ id: 'e' }, async (tx) => {
        await opened.write(tx, 'e');
        return { rows: [], parse: () => 1 };
      });
      let ran = 0;
      const again = await inbox.consume({ id: 'e' }, async () => {
        ran += 1;
      });
      assert.equal(first.kind, 'processed');
      assert.deepEqual(again, { kind: 'duplicate', value: undefined });
      assert.equal(ran, 0);
      assert.equal(await opened.count(), before + 1);
    });

    it('keeps consumers apart and refuses a missing id', async () => {
      const other = new SqlInbox({ database: opened.database, consumer: 'audit' });
      assert.equal((await other.consume({ id: 'a' }, () => 'audited')).kind, 'processed');
      await assert.rejects(
        inbox.consume({ id: '' }, () => 1),
        (e) => isIdempotencyError(e, 'KEY_MISSING'),
      );
      assert.throws(() => new SqlInbox({ database: {} as StepDatabase<unknown>, consumer: 'x' }), /step database/);
    });
  });
}
