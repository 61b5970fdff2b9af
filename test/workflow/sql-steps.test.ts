// Atomic SQL steps (src/workflow/sql/) against the real servers: one table of cases run on
// PostgreSQL, MariaDB/MySQL and SQLite, then what only SQLite has (processes sharing one file).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import { mysqlSteps } from '../../src/workflow/sql/mysql-steps.js';
import { postgresSteps } from '../../src/workflow/sql/postgres-steps.js';
import { type SqliteStepDatabaseLike, sqliteSteps } from '../../src/workflow/sql/sqlite-steps.js';
import type { StepDatabase } from '../../src/workflow/sql/step-database.js';

const POSTGRES_URL = process.env.IDEM_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const MYSQL_URL = process.env.IDEM_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

type AnySteps = StepDatabase<unknown>;

/** One holder of the steps: its own pool or connection, as another process would have. */
interface Holder {
  steps: AnySteps;
  /** Runs one of the step's own statements (`?` placeholders) on `tx`, the connection `fn` got. */
  write(tx: unknown, sql: string, values: unknown[]): Promise<void>;
  /** True while this holder waits for another holder's transaction (its lock, or the write lock). */
  blocked(): Promise<boolean>;
}

interface Backend {
  name: 'postgres' | 'mysql' | 'sqlite';
  /** A holder of the steps in `table`: a pool (for SQLite, a Database handle), or one connection. */
  holder(table: string, kind: 'pool' | 'single'): Promise<Holder>;
  /** Runs SQL outside any step, on a connection of the test's own (`?` placeholders). */
  query<T>(sql: string, values?: unknown[]): Promise<T[]>;
  /** Makes the steps on `table` with no database behind them: for option checks only. */
  make(table: string): AnySteps;
  /** Steps on a database that cannot be used (a closed port, a closed file). */
  unusable(): Promise<AnySteps>;
  /** Whether a second holder of a step waits for the first instead of running `fn` too. */
  serializesHolders: boolean;
  /** Why the dialect cannot notice a `fn` that commits the transaction itself, if it cannot. */
  blindToEndedTransactions?: string;
  /** Why two transactions cannot deadlock, if they cannot. */
  noDeadlocks?: string;
  /** Ends what `holder` and `unusable` opened. */
  endHolders(): Promise<void>;
  close(): Promise<void>;
}

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (data: Uint8Array): string => Buffer.from(data).toString();
const fresh = (): string => randomBytes(5).toString('hex');

function hasCode(code: ErrorCode, message?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(isIdempotencyError(error, code), `expected ${code}, got ${String(error)}`);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  };
}

/** Waits until `ready()` holds: a state, with a generous guard, not a time. */
async function until(what: string, ready: () => boolean | Promise<boolean>): Promise<void> {
  const guard = Date.now() + 20_000;
  while (!(await ready())) {
    if (Date.now() > guard) throw new Error(`gave up waiting until ${what}`);
    await sleep(5);
  }
}

/** Resolves once the clock has passed `ms`, so rows written after it have a later `created_at_ms`. */
async function nextMs(ms = Date.now()): Promise<number> {
  await until('the clock moves on', () => Date.now() > ms);
  return Date.now();
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => {};
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

async function postgresBackend(): Promise<Backend> {
  const admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 3 });
  const opened: { end(): Promise<void> }[] = [];
  const toPg = (sql: string): string => {
    let n = 0;
    return sql.replace(/\?/g, () => `$${++n}`);
  };
  return {
    name: 'postgres',
    serializesHolders: true,
    async holder(table, kind) {
      const application_name = `idem_steps_${fresh()}`;
      const config = { connectionString: POSTGRES_URL, application_name };
      let steps: AnySteps;
      if (kind === 'pool') {
        const pool = new pg.Pool({ ...config, max: 4 });
        opened.push(pool);
        const typed: StepDatabase<pg.PoolClient> = postgresSteps(pool, { table });
        steps = typed as AnySteps;
      } else {
        const client = new pg.Client(config);
        await client.connect();
        opened.push(client);
        const typed: StepDatabase<pg.Client> = postgresSteps(client, { table });
        steps = typed as AnySteps;
      }
      return {
        steps,
        write: async (tx, sql, values) => {
          await (tx as pg.ClientBase).query(toPg(sql), values);
        },
        async blocked() {
          const { rows } = await admin.query(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
            [application_name],
          );
          return (rows[0] as { n: number }).n > 0;
        },
      };
    },
    async query<T>(sql: string, values?: unknown[]) {
      return (await admin.query(toPg(sql), values)).rows as T[];
    },
    make: (table) => postgresSteps(admin, { table }) as AnySteps,
    async unusable() {
      const pool = new pg.Pool({
        connectionString: 'postgres://postgres@127.0.0.1:1/test',
        connectionTimeoutMillis: 2000,
      });
      opened.push(pool);
      return postgresSteps(pool) as AnySteps;
    },
    async endHolders() {
      await Promise.all(opened.splice(0).map((one) => one.end()));
    },
    close: () => admin.end(),
  };
}

async function mysqlBackend(): Promise<Backend> {
  const admin = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 3 });
  const opened: { end(): Promise<void> }[] = [];
  return {
    name: 'mysql',
    serializesHolders: false,
    blindToEndedTransactions: 'mysql2 does not say whether a transaction is open on a connection',
    async holder(table, kind) {
      let steps: AnySteps;
      if (kind === 'pool') {
        const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 4 });
        opened.push(pool);
        const typed: StepDatabase<mysql.PoolConnection> = mysqlSteps(pool, { table });
        steps = typed as AnySteps;
      } else {
        const connection = await mysql.createConnection({ uri: MYSQL_URL });
        opened.push(connection);
        const typed: StepDatabase<mysql.Connection> = mysqlSteps(connection, { table });
        steps = typed as AnySteps;
      }
      return {
        steps,
        write: async (tx, sql, values) => {
          await (tx as mysql.Connection).query(sql, values);
        },
        // The second holder runs fn too (no lock before the INSERT): the race shows as its fn starting.
        blocked: async () => false,
      };
    },
    async query<T>(sql: string, values?: unknown[]) {
      const [rows] = await admin.query(sql, values);
      return rows as T[];
    },
    make: (table) => mysqlSteps(admin, { table }) as AnySteps,
    async unusable() {
      const pool = mysql.createPool({ uri: 'mysql://root@127.0.0.1:1/test', connectTimeout: 2000 });
      opened.push(pool);
      return mysqlSteps(pool) as AnySteps;
    },
    async endHolders() {
      await Promise.all(opened.splice(0).map((one) => one.end()));
    },
    close: () => admin.end(),
  };
}

/** A handle that counts how often its `BEGIN IMMEDIATE` found the write lock taken. */
function countingRefusals(db: Database.Database): { handle: SqliteStepDatabaseLike; refusals: () => number } {
  let refused = 0;
  const handle: SqliteStepDatabaseLike = {
    prepare: (source) => db.prepare(source),
    exec(source) {
      try {
        return db.exec(source);
      } catch (error) {
        if (source === 'BEGIN IMMEDIATE') refused++;
        throw error;
      }
    },
    pragma: (source, options) => db.pragma(source, options),
    get inTransaction() {
      return db.inTransaction;
    },
  };
  return { handle, refusals: () => refused };
}

async function sqliteBackend(): Promise<Backend> {
  const directory = join(tmpdir(), 'idem-workflow-steps');
  mkdirSync(directory, { recursive: true });
  const path = join(directory, `${fresh()}.db`);
  const open = (): Database.Database => new Database(path, { timeout: 10_000 });
  const admin = open();
  admin.pragma('journal_mode = WAL');
  const opened: Database.Database[] = [];
  return {
    name: 'sqlite',
    serializesHolders: true,
    noDeadlocks: 'BEGIN IMMEDIATE serializes the writers: two step transactions never hold locks the other wants',
    async holder(table, kind) {
      const db = open();
      opened.push(db);
      if (kind === 'single') {
        const typed: StepDatabase<Database.Database> = sqliteSteps(db, { table });
        return {
          steps: typed as AnySteps,
          write: async (tx, sql, values) => {
            (tx as Database.Database).prepare(sql).run(...values);
          },
          blocked: async () => false,
        };
      }
      const { handle, refusals } = countingRefusals(db);
      return {
        steps: sqliteSteps(handle, { table }) as AnySteps,
        write: async (tx, sql, values) => {
          (tx as SqliteStepDatabaseLike).prepare(sql).run(...values);
        },
        blocked: async () => refusals() > 0,
      };
    },
    async query<T>(sql: string, values: unknown[] = []) {
      const statement = admin.prepare(sql);
      if (statement.reader) return statement.all(...values) as T[];
      statement.run(...values);
      return [];
    },
    make: (table) => sqliteSteps(admin, { table }) as AnySteps,
    async unusable() {
      const db = open();
      db.close();
      return sqliteSteps(db) as AnySteps;
    },
    async endHolders() {
      for (const db of opened.splice(0)) db.close();
    },
    async close() {
      admin.close();
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
    },
  };
}

const backends = [
  { name: 'postgres', open: postgresBackend },
  { name: 'mysql', open: mysqlBackend },
  { name: 'sqlite', open: sqliteBackend },
] as const;

for (const { name, open } of backends) {
  describe(`${name} steps`, () => {
    let b: Backend;
    /** The tables of the current test: the steps' and a business table the steps write to. */
    let steps: string;
    let business: string;
    const dropped: string[] = [];

    before(async () => {
      b = await open();
    });

    /** A fresh pair of tables for one test. */
    async function tables(): Promise<void> {
      steps = `steps_${fresh()}`;
      business = `biz_${fresh()}`;
      dropped.push(steps, business);
      await b.query(
        `CREATE TABLE ${business} (run_id VARCHAR(64) NOT NULL, step_index INT NOT NULL, tag VARCHAR(64) NOT NULL)`,
      );
    }

    const insertSql = (): string => `INSERT INTO ${business} (run_id, step_index, tag) VALUES (?, ?, ?)`;

    async function tags(runId: string, stepIndex?: number): Promise<string[]> {
      const rows =
        stepIndex === undefined
          ? await b.query<{ tag: string }>(`SELECT tag FROM ${business} WHERE run_id = ? ORDER BY tag`, [runId])
          : await b.query<{ tag: string }>(
              `SELECT tag FROM ${business} WHERE run_id = ? AND step_index = ? ORDER BY tag`,
              [runId, stepIndex],
            );
      return rows.map((row) => row.tag);
    }

    afterEach(async () => {
      await b.endHolders();
      for (const table of dropped.splice(0)) await b.query(`DROP TABLE IF EXISTS ${table}`);
    });

    it('runs fn once and records its bytes; a second call returns them without running fn', async () => {
      await tables();
      const h = await b.holder(steps, 'pool');
      let runs = 0;
      const step = { runId: 'order-1', stepIndex: 0, name: 'reserve' };
      const fn = async (tx: unknown): Promise<Uint8Array> => {
        runs++;
        await h.write(tx, insertSql(), ['order-1', 0, `run-${runs}`]);
        return bytes(`run-${runs}`);
      };
      const first = await h.steps.runOnce(step, fn);
      assert.deepEqual({ data: text(first.data), ran: first.ran }, { data: 'run-1', ran: true });
      const again = await h.steps.runOnce(step, fn);
      assert.deepEqual({ data: text(again.data), ran: again.ran }, { data: 'run-1', ran: false });
      assert.equal(runs, 1);
      assert.deepEqual(await tags('order-1'), ['run-1']);

      const recorded = await h.steps.recorded({ runId: 'order-1', stepIndex: 0 });
      assert.deepEqual(recorded && { name: recorded.name, data: text(recorded.data) }, {
        name: 'reserve',
        data: 'run-1',
      });
      assert.equal(await h.steps.recorded({ runId: 'order-1', stepIndex: 1 }), undefined);
      assert.equal(await h.steps.recorded({ runId: 'order-2', stepIndex: 0 }), undefined);
    });

    it('keeps the recorded bytes byte for byte, the empty array included', async () => {
      await tables();
      const h = await b.holder(steps, 'pool');
      const every = Uint8Array.from({ length: 256 }, (_, i) => i);
      await h.steps.runOnce({ runId: 'bytes', stepIndex: 0, name: 'all' }, async () => every);
      await h.steps.runOnce({ runId: 'bytes', stepIndex: 1, name: 'none' }, async () => new Uint8Array(0));
      assert.deepEqual(Uint8Array.from((await h.steps.recorded({ runId: 'bytes', stepIndex: 0 }))?.data ?? []), every);
      assert.equal((await h.steps.recorded({ runId: 'bytes', stepIndex: 1 }))?.data.byteLength, 0);
      const replay = await h.steps.runOnce({ runId: 'bytes', stepIndex: 1, name: 'none' }, async () => bytes('x'));
      assert.deepEqual({ length: replay.data.byteLength, ran: replay.ran }, { length: 0, ran: false });
    });

    it("rolls fn's own writes back when fn throws, records nothing, and a retry runs fn again", async () => {
      await tables();
      const h = await b.holder(steps, 'pool');
      const step = { runId: 'order-3', stepIndex: 2, name: 'charge' };
      const declined = new Error('card declined');
      await assert.rejects(
        h.steps.runOnce(step, async (tx) => {
          await h.write(tx, insertSql(), ['order-3', 2, 'failed']);
          throw declined;
        }),
        (error) => error === declined,
      );
      assert.deepEqual(await tags('order-3'), []);
      assert.equal(await h.steps.recorded(step), undefined);

      const retry = await h.steps.runOnce(step, async (tx) => {
        await h.write(tx, insertSql(), ['order-3', 2, 'retried']);
        return bytes('retried');
      });
      assert.deepEqual({ data: text(retry.data), ran: retry.ran }, { data: 'retried', ran: true });
      assert.deepEqual(await tags('order-3'), ['retried']);
    });

    it('two holders of one step at once: one commits, one business row, both return its data', async () => {
      await tables();
      const [first, second] = [await b.holder(steps, 'pool'), await b.holder(steps, 'pool')];
      const step = { runId: 'race', stepIndex: 0, name: 'reserve' };
      const ran: string[] = [];
      const inFirstFn = deferred();
      const fnOf =
        (holder: Holder, tag: string, hold?: () => Promise<void>) =>
        async (tx: unknown): Promise<Uint8Array> => {
          ran.push(tag);
          await holder.write(tx, insertSql(), ['race', 0, tag]);
          await hold?.();
          return bytes(tag);
        };
      // The first holder keeps its transaction open until the second has either run its own fn
      // or is waiting for the first's: so the two transactions overlap, whatever the dialect.
      const a = first.steps.runOnce(
        step,
        fnOf(first, 'A', async () => {
          inFirstFn.resolve();
          await until('the second holder meets the first', async () => ran.includes('B') || (await second.blocked()));
        }),
      );
      await inFirstFn.promise;
      const c = second.steps.runOnce(step, fnOf(second, 'B'));
      const [outA, outB] = await Promise.all([a, c]);

      assert.equal([outA.ran, outB.ran].filter(Boolean).length, 1, 'exactly one holder committed');
      const winner = outA.ran ? 'A' : 'B';
      assert.deepEqual([text(outA.data), text(outB.data)], [winner, winner]);
      assert.deepEqual(await tags('race'), [winner]);
      assert.equal(text((await first.steps.recorded(step))?.data ?? new Uint8Array()), winner);
      if (b.serializesHolders) assert.deepEqual(ran, ['A'], 'the second holder waited and never ran fn');
    });

    it("a second holder whose fn fails on the first's writes (a unique key) returns the committed step", async () => {
      await tables();
      const orders = `orders_${fresh()}`;
      dropped.push(orders);
      await b.query(`CREATE TABLE ${orders} (id VARCHAR(64) PRIMARY KEY, tag VARCHAR(64) NOT NULL)`);
      const [first, second] = [await b.holder(steps, 'pool'), await b.holder(steps, 'pool')];
      const step = { runId: 'unique', stepIndex: 0, name: 'create-order' };
      const ran: string[] = [];
      const inFirstFn = deferred();
      const fnOf =
        (holder: Holder, tag: string, hold?: () => Promise<void>) =>
        async (tx: unknown): Promise<Uint8Array> => {
          ran.push(tag);
          await hold?.();
          // Where both run fn, the second's INSERT waits for the first's row, then fails on its key.
          await holder.write(tx, `INSERT INTO ${orders} (id, tag) VALUES (?, ?)`, ['order-9', tag]);
          return bytes(tag);
        };
      const a = first.steps.runOnce(
        step,
        fnOf(first, 'A', async () => {
          inFirstFn.resolve();
          await until('the second holder meets the first', async () => ran.includes('B') || (await second.blocked()));
        }),
      );
      await inFirstFn.promise;
      const [outA, outB] = await Promise.all([a, second.steps.runOnce(step, fnOf(second, 'B'))]);
      assert.equal([outA.ran, outB.ran].filter(Boolean).length, 1, 'exactly one holder committed');
      const winner = outA.ran ? 'A' : 'B';
      assert.deepEqual([text(outA.data), text(outB.data)], [winner, winner]);
      assert.deepEqual(await b.query(`SELECT id, tag FROM ${orders}`), [{ id: 'order-9', tag: winner }]);
    });

    it('many steps raced by two holders at once: every step commits once, with one business row', async () => {
      await tables();
      const holders = [await b.holder(steps, 'pool'), await b.holder(steps, 'pool')];
      const count = 12;
      const outcomes = await Promise.all(
        holders.flatMap((holder, h) =>
          Array.from({ length: count }, async (_, i) => {
            const outcome = await holder.steps.runOnce({ runId: 'many', stepIndex: i, name: `s${i}` }, async (tx) => {
              await holder.write(tx, insertSql(), ['many', i, `h${h}-${i}`]);
              return bytes(`h${h}-${i}`);
            });
            return { i, data: text(outcome.data), ran: outcome.ran };
          }),
        ),
      );
      for (let i = 0; i < count; i++) {
        const mine = outcomes.filter((outcome) => outcome.i === i);
        assert.equal(mine.filter((outcome) => outcome.ran).length, 1, `step ${i} committed once`);
        const committed = mine.find((outcome) => outcome.ran)?.data;
        assert.ok(
          mine.every((outcome) => outcome.data === committed),
          `step ${i}: both holders got its data`,
        );
        assert.deepEqual(await tags('many', i), [committed], `step ${i}: one business row`);
      }
      const again = await holders[0]?.steps.runOnce({ runId: 'many', stepIndex: 3, name: 's3' }, async () =>
        bytes('x'),
      );
      assert.equal(again?.ran, false);
    });

    it('on one connection, concurrent steps queue and all commit; recorded() waits for the open one', async () => {
      await tables();
      const h = await b.holder(steps, 'single');
      const order: string[] = [];
      const gate = deferred();
      const slowStarted = deferred();
      const slow = h.steps
        .runOnce({ runId: 'one', stepIndex: 0, name: 'slow' }, async (tx) => {
          slowStarted.resolve();
          await h.write(tx, insertSql(), ['one', 0, 'slow']);
          await gate.promise;
          return bytes('slow');
        })
        .then((outcome) => {
          order.push('slow');
          return outcome;
        });
      await slowStarted.promise;
      const others = Promise.all(
        [1, 2, 3, 4].map((i) =>
          h.steps.runOnce({ runId: 'one', stepIndex: i, name: `s${i}` }, async (tx) => {
            await h.write(tx, insertSql(), ['one', i, `s${i}`]);
            return bytes(`s${i}`);
          }),
        ),
      );
      const read = h.steps.recorded({ runId: 'one', stepIndex: 0 }).then((recorded) => {
        order.push('read');
        return recorded;
      });
      gate.resolve();
      const [slowOutcome, otherOutcomes, recorded] = await Promise.all([slow, others, read]);
      assert.equal(slowOutcome.ran, true);
      assert.deepEqual(
        otherOutcomes.map((outcome) => [text(outcome.data), outcome.ran]),
        [1, 2, 3, 4].map((i) => [`s${i}`, true]),
      );
      assert.deepEqual(order, ['slow', 'read'], 'the read waited for the open transaction');
      assert.equal(text(recorded?.data ?? new Uint8Array()), 'slow');
      assert.deepEqual(await tags('one'), ['s1', 's2', 's3', 's4', 'slow']);
    });

    it("refuses a runOnce inside another's fn on the same connection instead of waiting forever", async () => {
      await tables();
      const h = await b.holder(steps, 'single');
      await assert.rejects(
        h.steps.runOnce({ runId: 'nest', stepIndex: 0, name: 'outer' }, async () => {
          await h.steps.runOnce({ runId: 'nest', stepIndex: 1, name: 'inner' }, async () => bytes('inner'));
          return bytes('outer');
        }),
        hasCode(ErrorCode.INVALID_OPTIONS, /inside the fn of another runOnce/),
      );
      assert.equal(await h.steps.recorded({ runId: 'nest', stepIndex: 0 }), undefined);
      assert.equal(await h.steps.recorded({ runId: 'nest', stepIndex: 1 }), undefined);
    });

    it('refuses a fn that resolves to something other than bytes, and commits none of its writes', async () => {
      await tables();
      const h = await b.holder(steps, 'pool');
      const step = { runId: 'shape', stepIndex: 0, name: 'wrong' };
      await assert.rejects(
        h.steps.runOnce(step, async (tx) => {
          await h.write(tx, insertSql(), ['shape', 0, 'written']);
          return 'not bytes' as unknown as Uint8Array;
        }),
        hasCode(ErrorCode.INVALID_OPTIONS, /must resolve to a Uint8Array/),
      );
      assert.deepEqual(await tags('shape'), []);
      assert.equal(await h.steps.recorded(step), undefined);
    });

    it('refuses a fn that commits the transaction itself, and records no step', async (t) => {
      if (b.blindToEndedTransactions !== undefined) return t.skip(b.blindToEndedTransactions);
      await tables();
      const h = await b.holder(steps, 'pool');
      const step = { runId: 'ended', stepIndex: 0, name: 'commits' };
      await assert.rejects(
        h.steps.runOnce(step, async (tx) => {
          await h.write(tx, 'COMMIT', []);
          return bytes('x');
        }),
        hasCode(ErrorCode.INVALID_OPTIONS, /ended the transaction itself/),
      );
      assert.equal(await h.steps.recorded(step), undefined);
    });

    it('retries a transaction that died of a deadlock: the victim runs fn again and both steps commit', async (t) => {
      if (b.noDeadlocks !== undefined) return t.skip(b.noDeadlocks);
      await tables();
      const accounts = `acct_${fresh()}`;
      dropped.push(accounts);
      await b.query(`CREATE TABLE ${accounts} (id INT PRIMARY KEY, n INT NOT NULL)`);
      await b.query(`INSERT INTO ${accounts} (id, n) VALUES (1, 0), (2, 0)`);
      const [x, y] = [await b.holder(steps, 'pool'), await b.holder(steps, 'pool')];
      const attempts = { x: 0, y: 0 };
      const locked = { x: deferred(), y: deferred() };
      const bump = `UPDATE ${accounts} SET n = n + 1 WHERE id = ?`;
      // x locks account 1 then 2; y locks 2 then 1; each takes its second lock only once the
      // other holds its first: a deadlock, whose victim the server rolls back.
      const [outX, outY] = await Promise.all([
        x.steps.runOnce({ runId: 'deadlock', stepIndex: 0, name: 'x' }, async (tx) => {
          attempts.x++;
          await x.write(tx, bump, [1]);
          locked.x.resolve();
          await locked.y.promise;
          await x.write(tx, bump, [2]);
          return bytes('x');
        }),
        y.steps.runOnce({ runId: 'deadlock', stepIndex: 1, name: 'y' }, async (tx) => {
          attempts.y++;
          await y.write(tx, bump, [2]);
          locked.y.resolve();
          await locked.x.promise;
          await y.write(tx, bump, [1]);
          return bytes('y');
        }),
      ]);
      assert.deepEqual([outX.ran, outY.ran], [true, true]);
      assert.equal(attempts.x + attempts.y, 3, `one victim ran fn again (x ${attempts.x}, y ${attempts.y})`);
      const rows = await b.query<{ id: number; n: number }>(`SELECT id, n FROM ${accounts} ORDER BY id`);
      assert.deepEqual(
        rows.map((row) => [Number(row.id), Number(row.n)]),
        [
          [1, 2],
          [2, 2],
        ],
      );
    });

    it('sweep deletes the rows created before the time given, oldest first, at most limit', async () => {
      await tables();
      const h = await b.holder(steps, 'pool');
      // Each row gets a later ms than the one before; cutMs is later than every old row.
      let cutMs = 0;
      for (const stepIndex of [0, 1, 2]) {
        await h.steps.runOnce({ runId: 'old', stepIndex, name: 'old' }, async () => bytes(`old-${stepIndex}`));
        cutMs = await nextMs();
      }
      await nextMs(cutMs);
      await h.steps.runOnce({ runId: 'new', stepIndex: 0, name: 'new' }, async () => bytes('new'));

      assert.equal(await h.steps.sweep(cutMs, 2), 2);
      assert.equal(await h.steps.recorded({ runId: 'old', stepIndex: 1 }), undefined);
      assert.notEqual(await h.steps.recorded({ runId: 'old', stepIndex: 2 }), undefined, 'the newest old row stays');
      assert.equal(await h.steps.sweep(cutMs), 1);
      assert.equal(await h.steps.sweep(cutMs), 0);
      assert.equal(text((await h.steps.recorded({ runId: 'new', stepIndex: 0 }))?.data ?? new Uint8Array()), 'new');

      await assert.rejects(h.steps.sweep(Number.NaN), hasCode(ErrorCode.INVALID_OPTIONS, /beforeMs/));
      await assert.rejects(h.steps.sweep(cutMs, 0), hasCode(ErrorCode.INVALID_OPTIONS, /limit/));
    });

    it('refuses a table name that is not a plain identifier, and steps the tables cannot hold', async () => {
      for (const table of ['idem-steps', 'idem steps', 'x;DROP TABLE y', '', 'a'.repeat(80)]) {
        assert.throws(() => b.make(table), hasCode(ErrorCode.INVALID_OPTIONS, /table/), table);
      }
      const steps = b.make('Idem_Steps_2');
      const fn = async (): Promise<Uint8Array> => bytes('never');
      for (const step of [
        { runId: '', stepIndex: 0, name: 'n' },
        { runId: 'r'.repeat(256), stepIndex: 0, name: 'n' },
        { runId: 'r', stepIndex: -1, name: 'n' },
        { runId: 'r', stepIndex: 1.5, name: 'n' },
        { runId: 'r', stepIndex: 2 ** 31, name: 'n' },
        { runId: 'r', stepIndex: 0, name: 7 as unknown as string },
      ]) {
        await assert.rejects(steps.runOnce(step, fn), hasCode(ErrorCode.INVALID_OPTIONS), JSON.stringify(step));
      }
      await assert.rejects(steps.recorded({ runId: '', stepIndex: 0 }), hasCode(ErrorCode.INVALID_OPTIONS, /runId/));
    });

    it('a database that cannot be used: STORE_UNAVAILABLE naming what failed, and fn never runs', async () => {
      const steps = await b.unusable();
      let ran = false;
      await assert.rejects(
        steps.runOnce({ runId: 'down', stepIndex: 0, name: 'n' }, async () => {
          ran = true;
          return bytes('x');
        }),
        hasCode(ErrorCode.STORE_UNAVAILABLE, new RegExp(`\\[idem\\] \\[${b.name} steps\\] .+ failed: .+retry runOnce`)),
      );
      assert.equal(ran, false);
      await assert.rejects(
        steps.recorded({ runId: 'down', stepIndex: 0 }),
        hasCode(ErrorCode.STORE_UNAVAILABLE, /failed: .+Nothing was changed/),
      );
    });

    after(async () => {
      await b.close();
    });
  });
}

describe('postgres steps only', () => {
  it("under REPEATABLE READ the second holder's fn runs, but its INSERT loses: one business row, one data", async () => {
    // The second holder's snapshot predates its wait for the step lock, so it does not see the
    // first holder's row and runs fn; the unique violation at its INSERT must decide.
    const options = '-c default_transaction_isolation=repeatable\\ read';
    const names = { steps: `steps_${fresh()}`, business: `biz_${fresh()}` };
    const admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
    const pools = [1, 2].map(
      (i) => new pg.Pool({ connectionString: POSTGRES_URL, options, application_name: `idem_rr_${i}_${fresh()}` }),
    );
    try {
      await admin.query(`CREATE TABLE ${names.business} (run_id TEXT NOT NULL, tag TEXT NOT NULL)`);
      const [first, second] = pools.map((pool) => postgresSteps(pool, { table: names.steps }));
      const ran: string[] = [];
      const inFirstFn = deferred();
      const fnOf =
        (tag: string, hold?: () => Promise<void>) =>
        async (tx: pg.PoolClient): Promise<Uint8Array> => {
          ran.push(tag);
          await tx.query(`INSERT INTO ${names.business} (run_id, tag) VALUES ('rr', $1)`, [tag]);
          await hold?.();
          return bytes(tag);
        };
      const secondName = pools[1]?.options.application_name;
      const secondWaits = async (): Promise<boolean> => {
        const { rows } = await admin.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
          [secondName],
        );
        return (rows[0] as { n: number }).n > 0;
      };
      const step = { runId: 'rr', stepIndex: 0, name: 'rr' };
      const a = first?.runOnce(
        step,
        fnOf('A', async () => {
          inFirstFn.resolve();
          await until('the second holder waits for the step lock', secondWaits);
        }),
      );
      await inFirstFn.promise;
      const [outA, outB] = await Promise.all([a, second?.runOnce(step, fnOf('B'))]);
      assert.deepEqual([outA?.ran, outB?.ran], [true, false]);
      assert.deepEqual([text(outA?.data ?? bytes('')), text(outB?.data ?? bytes(''))], ['A', 'A']);
      assert.deepEqual(ran, ['A', 'B'], "the second holder's fn ran, and was rolled back");
      const { rows } = await admin.query(`SELECT tag FROM ${names.business}`);
      assert.deepEqual(
        rows.map((row: { tag: string }) => row.tag),
        ['A'],
      );
    } finally {
      await admin.query(`DROP TABLE IF EXISTS ${names.business}, ${names.steps}`);
      await Promise.all([admin, ...pools].map((pool) => pool.end()));
    }
  });

  it('a schema that does not exist is STORE_MISCONFIGURED, saying to create it', async () => {
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
    try {
      const steps = postgresSteps(pool, { schema: `nope_${fresh()}` });
      await assert.rejects(
        steps.runOnce({ runId: 'r', stepIndex: 0, name: 'n' }, async () => bytes('x')),
        hasCode(ErrorCode.STORE_MISCONFIGURED, /create the schema/),
      );
      assert.throws(() => postgresSteps(pool, { schema: 'bad schema' }), hasCode(ErrorCode.INVALID_OPTIONS, /schema/));
    } finally {
      await pool.end();
    }
  });
});

describe('sqlite steps only', () => {
  it('child processes racing on one file: every step commits once, with one business row', async () => {
    const directory = join(tmpdir(), 'idem-workflow-steps');
    mkdirSync(directory, { recursive: true });
    const path = join(directory, `procs_${fresh()}.db`);
    const admin = new Database(path);
    admin.pragma('journal_mode = WAL');
    admin.exec('CREATE TABLE biz (run_id TEXT NOT NULL, step_index INTEGER NOT NULL, tag TEXT NOT NULL)');
    const job = { path, table: 'steps', business: 'biz', runId: 'procs', steps: 8 };
    const worker = new URL('./fixtures/sqlite-steps-worker.ts', import.meta.url).pathname;
    try {
      const children = await Promise.all(
        [1, 2, 3].map(async () => {
          const child = spawn(process.execPath, [...process.execArgv, worker, JSON.stringify(job)], {
            stdio: ['pipe', 'pipe', 'pipe'],
          });
          let stderr = '';
          child.stderr.on('data', (chunk: Buffer) => {
            stderr += chunk.toString();
          });
          const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
          const next = async (): Promise<string> => {
            const line = await lines.next();
            if (line.done) throw new Error(`worker ended early: ${stderr}`);
            return line.value;
          };
          assert.equal(await next(), 'ready');
          return { child, next };
        }),
      );
      for (const { child } of children) child.stdin.write('go\n');
      const reports = await Promise.all(
        children.map(
          async ({ next }) => JSON.parse(await next()) as { stepIndex: number; data: string; ran: boolean }[],
        ),
      );
      for (let stepIndex = 0; stepIndex < job.steps; stepIndex++) {
        const outcomes = reports.map((report) => report.find((outcome) => outcome.stepIndex === stepIndex));
        assert.equal(outcomes.filter((outcome) => outcome?.ran).length, 1, `step ${stepIndex} committed once`);
        const committed = outcomes.find((outcome) => outcome?.ran)?.data;
        assert.ok(
          outcomes.every((outcome) => outcome?.data === committed),
          `step ${stepIndex}: every process got it`,
        );
        const rows = admin.prepare('SELECT tag FROM biz WHERE step_index = ?').all(stepIndex) as { tag: string }[];
        assert.deepEqual(
          rows.map((row) => row.tag),
          [committed],
        );
      }
    } finally {
      admin.close();
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
    }
  });
});
