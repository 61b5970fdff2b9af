// `idem backfill <module>` as users run it, on a SQLite file, with the job module in fixtures/.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runIdem, tempDir } from './helpers.js';

const job = 'test/cli/fixtures/backfill-job.mjs';

function storeOf(): { url: string; log: string } {
  const dir = tempDir();
  return { url: `sqlite:${join(dir, 'idem.db')}`, log: join(dir, 'processed.log') };
}

const processed = (log: string) => readFileSync(log, 'utf8').trim().split('\n').filter(Boolean);

describe('idem backfill', () => {
  it('lists the items that failed and exits 1; the next run tries only those, skips the rest and exits 0', async () => {
    const { url, log } = storeOf();
    const env = { BACKFILL_COUNT: '300', BACKFILL_FAIL: 'item-7,item-250', BACKFILL_LOG: log };
    const first = await runIdem(['backfill', job, '--store', url, '--retries', '1'], { env });
    assert.equal(first.code, 1, first.stderr);
    assert.match(
      first.stdout,
      /^idem: backfill cli-job on sqlite:.*: 298 done, 0 skipped \(done before\), 2 failed, in /m,
    );
    assert.match(first.stdout, /^idem: 2 handler call\(s\) failed and were tried again\.$/m);
    assert.match(first.stdout, /^ {2}item-7: no invoice for item-7$/m);
    assert.match(first.stdout, /^ {2}item-250: no invoice for item-250$/m);

    const second = await runIdem(['backfill', job, '--store', url, '--json'], {
      env: { ...env, BACKFILL_FAIL: '' },
    });
    assert.equal(second.code, 0, second.stderr);
    const summary = JSON.parse(second.stdout);
    assert.deepEqual(
      {
        name: summary.name,
        done: summary.done,
        skipped: summary.skipped,
        failed: summary.failed,
        stopped: summary.stopped,
      },
      { name: 'cli-job', done: 2, skipped: 298, failed: [], stopped: false },
    );
    assert.equal(second.stderr, '', 'no progress with --json');
    const keys = processed(log);
    assert.equal(keys.length, 300);
    assert.equal(new Set(keys).size, 300, 'each item processed once across both runs');
  });

  it('stops on SIGINT after the items in progress, exits 1, and the next run goes on from there', async () => {
    const { url, log } = storeOf();
    const env = { BACKFILL_COUNT: '400', BACKFILL_SIGINT_AT: '120', BACKFILL_LOG: log };
    const stopped = await runIdem(['backfill', job, '--store', url, '--concurrency', '2', '--no-progress'], { env });
    assert.equal(stopped.code, 1, stopped.stderr);
    assert.match(stopped.stderr, /^idem: SIGINT: starting no new item; waiting for those in progress/m);
    assert.match(stopped.stdout, /^idem: stopped before the end: run the same command again to go on\.$/m);
    const before = processed(log).length;
    assert.ok(before < 400);

    const resumed = await runIdem(['backfill', job, '--store', url, '--json'], {
      env: { ...env, BACKFILL_SIGINT_AT: '' },
    });
    assert.equal(resumed.code, 0, resumed.stderr);
    const summary = JSON.parse(resumed.stdout);
    assert.equal(summary.skipped, before);
    assert.equal(summary.done, 400 - before);
    assert.equal(new Set(processed(log)).size, 400);
    assert.equal(processed(log).length, 400);
  });

  it('keeps the records under --name: another name processes the items again', async () => {
    const { url } = storeOf();
    const env = { BACKFILL_COUNT: '20' };
    await runIdem(['backfill', job, '--store', url, '--json'], { env });
    const same = JSON.parse((await runIdem(['backfill', job, '--store', url, '--json'], { env })).stdout);
    const other = JSON.parse(
      (await runIdem(['backfill', job, '--store', url, '--json', '--name', 'cli-job-v2'], { env })).stdout,
    );
    assert.deepEqual([same.name, same.done, same.skipped], ['cli-job', 0, 20]);
    assert.deepEqual([other.name, other.done, other.skipped], ['cli-job-v2', 20, 0]);
  });

  it('prints a progress line on stderr when it is not a terminal', async () => {
    const { url } = storeOf();
    const run = await runIdem(['backfill', job, '--store', url], { env: { BACKFILL_COUNT: '10' } });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /^idem: backfill cli-job: 10 \| 10 done, 0 skipped, 0 failed \| [\d,]+\/s$/m);
  });

  it('refuses a module without the exports it needs, in one line with exit code 2', async () => {
    const { url } = storeOf();
    const run = await runIdem(['backfill', 'test/cli/fixtures/workflows-module.mjs', '--store', url]);
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /^idem: backfill test\/cli\/fixtures\/workflows-module\.mjs does not export items, key, handler: /,
    );
    assert.equal(run.stderr.trim().split('\n').length, 1);
  });

  it('stops with exit code 2 when the key function gives an empty key', async () => {
    const { url } = storeOf();
    const run = await runIdem(['backfill', job, '--store', url, '--no-progress'], {
      env: { BACKFILL_COUNT: '10', BACKFILL_EMPTY_KEY: '4' },
    });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /the key function gave an empty string for item #4/);
  });

  it('refuses memory:, where a re-run could not skip what is done, and --concurrency 0', async () => {
    const memory = await runIdem(['backfill', job, '--store', 'memory:']);
    assert.equal(memory.code, 2);
    assert.match(memory.stderr, /memory: keeps nothing once the command ends/);
    const zero = await runIdem(['backfill', job, '--concurrency', '0']);
    assert.equal(zero.code, 2);
    assert.match(zero.stderr, /--concurrency/);
  });
});
