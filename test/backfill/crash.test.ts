// A backfill of 100,000 items killed three times with SIGKILL, each time right after an item's
// effect reached the ledger and before its record completed, then resumed by a fresh process
// until it ends: every item's effect is in the ledger exactly once, and the handler ran more than
// once only for items in flight at a kill.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { runChild } from '../kill-child.js';
import { postgresUrl } from '../stores/postgres.factory.js';
import { ledgerDdl } from './fixtures/ledger.js';

const workerPath = new URL('./fixtures/crash-worker.ts', import.meta.url).pathname;
const COUNT = 100_000;
const CONCURRENCY = 16;
/** Effects each killed process writes before it kills itself. */
const KILLS = [17_000, 23_000, 29_000];

describe('a backfill killed with SIGKILL three times', () => {
  const suffix = randomBytes(4).toString('hex');
  const ledger = `bf_ledger_${suffix}`;
  let pool: pg.Pool;
  let dir: string;

  before(async () => {
    pool = new pg.Pool({ connectionString: postgresUrl, max: 2 });
    await pool.query(ledgerDdl(ledger));
    dir = mkdtempSync(join(tmpdir(), 'idem-backfill-crash-'));
  });

  after(async () => {
    await pool.query(`DROP TABLE IF EXISTS "${ledger}", "${ledger}_calls"`);
    await pool.end();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes every effect exactly once across the kills, and a last run skips all 100,000 items', async () => {
    const job = {
      sqlitePath: join(dir, 'idem.db'),
      table: `idem_bf_${suffix}`,
      ledger,
      postgresUrl,
      name: `crash-${suffix}`,
      count: COUNT,
      concurrency: CONCURRENCY,
      batchSize: 500,
      // Short, so the run after a kill takes over the dead process's items soon.
      leaseMs: 1000,
    };
    for (const killAt of KILLS) {
      const child = await runChild(workerPath, job, String(killAt));
      assert.equal(child.signal, 'SIGKILL', `the child was killed after ${killAt} effects (stdout: ${child.stdout})`);
    }
    const last = await runChild(workerPath, job);
    assert.equal(last.code, 0, `the last run ended (stdout: ${last.stdout})`);
    const finished = JSON.parse(last.stdout) as { done: number; skipped: number; failed: string[] };
    assert.deepEqual(finished.failed, []);
    assert.equal(finished.done + finished.skipped, COUNT);

    const { rows } = await pool.query<{ items: string; rows: string; over: string; calls: string; again: string }>(
      `SELECT (SELECT count(DISTINCT item) FROM "${ledger}") AS items,
              (SELECT count(*) FROM "${ledger}") AS rows,
              (SELECT count(*) FROM (SELECT item FROM "${ledger}" GROUP BY item HAVING count(*) > 1) twice) AS over,
              (SELECT coalesce(sum(n), 0) FROM "${ledger}_calls") AS calls,
              (SELECT count(*) FROM "${ledger}_calls" WHERE n > 1) AS again`,
    );
    const seen = rows[0];
    assert.ok(seen);
    assert.equal(Number(seen.items), COUNT, 'every item has its effect');
    assert.equal(Number(seen.rows), COUNT, 'and only one');
    assert.equal(Number(seen.over), 0);
    // The handler ran again only for items in flight when a process was killed: at most the
    // concurrency per kill. Their second call found the effect there and did nothing.
    const again = Number(seen.again);
    assert.ok(again >= 1, 'at least the item killed between its effect and its record ran twice');
    assert.ok(again <= KILLS.length * CONCURRENCY, `${again} items ran more than once`);
    assert.ok(Number(seen.calls) - COUNT <= KILLS.length * CONCURRENCY);

    const rerun = await runChild(workerPath, job);
    assert.equal(rerun.code, 0);
    assert.deepEqual(JSON.parse(rerun.stdout), { done: 0, skipped: COUNT, failed: [] });
    const { rows: callsAfter } = await pool.query<{ calls: string }>(
      `SELECT coalesce(sum(n), 0) AS calls FROM "${ledger}_calls"`,
    );
    assert.equal(callsAfter[0]?.calls, seen.calls, 'the re-run called no handler');
  });
});
