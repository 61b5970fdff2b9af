import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { resolveServeConfig } from '../../src/cli/gateway/gateway-config.js';
import { send } from '../../src/testing/http-client.js';
import { dropStore as dropRedis, prefixOf, redisUrl } from '../stores/redis.factory.js';
import { newKey, type RunningIdem, runIdem, startIdem, TestUpstream, tempDir } from './helpers.js';

const directory = tempDir();
const namespace = `cli_workers_${process.pid}`;
after(() => rmSync(directory, { recursive: true, force: true }));

const stores: [string, string, () => Promise<void>][] = [
  ['SQLite', `sqlite:${join(directory, 'workers.db')}`, async () => {}],
  ['Redis', `${redisUrl}/?prefix=${prefixOf(namespace)}`, () => dropRedis(namespace)],
];

/** The worker pids `idem serve --workers N` printed when it started. */
function workerPids(gateway: RunningIdem): number[] {
  const found = /workers: \d+ \(pids ([\d, ]+)\)/.exec(gateway.output().stdout);
  assert.ok(found?.[1] !== undefined, gateway.output().stdout);
  return found[1].split(', ').map(Number);
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await sleep(50);
  }
  assert.fail(`timed out waiting for ${what}`);
}

for (const [name, storeUrl, drop] of stores) {
  describe(`idem serve --workers 2 on ${name}`, () => {
    const upstream = new TestUpstream();
    let gateway: RunningIdem;

    before(async () => {
      await drop();
      await upstream.start();
      gateway = await startIdem([
        '--upstream',
        upstream.url,
        '--store',
        storeUrl,
        '--workers',
        '2',
        '--on-in-progress',
        'wait',
      ]);
    });
    after(async () => {
      if (gateway.child.exitCode === null) await gateway.stop();
      await upstream.close();
      await drop();
    });

    it('runs the upstream once for one key sent on many connections at once, and every caller gets its answer', async () => {
      assert.equal(workerPids(gateway).length, 2);
      for (let round = 0; round < 3; round++) {
        const key = newKey();
        const before = upstream.hitCount('/charges');
        // Each send opens its own connection, so the workers share them out between them.
        const answers = await Promise.all(
          Array.from({ length: 16 }, () =>
            send(`${gateway.url}/charges`, {
              body: { amount: 300 + round, ms: 150 },
              headers: { authorization: 'Bearer test-client', 'idempotency-key': key },
            }),
          ),
        );
        assert.deepEqual(
          answers.map((answer) => answer.status),
          answers.map(() => 201),
          answers.map((answer) => answer.text).join('\n'),
        );
        assert.equal(new Set(answers.map((answer) => answer.text)).size, 1, 'one answer for every caller');
        const ran = answers.filter((answer) => answer.headers['idempotent-replayed'] !== 'true');
        assert.equal(ran.length, 1, 'one caller ran it; the others got its replay');
        assert.equal(upstream.hitCount('/charges') - before, 1, `round ${round}: one upstream run`);
      }
    });

    it('replaces a worker killed with SIGKILL and keeps serving', async () => {
      const [victim] = workerPids(gateway);
      process.kill(victim as number, 'SIGKILL');
      await until(() => /replaced the one that died; serving/.test(gateway.output().stderr), 'the new worker');
      assert.match(gateway.output().stderr, /exited on SIGKILL; .* Starting a new worker in \d+ ms/);
      for (let i = 0; i < 8; i++) {
        const answer = await send(`${gateway.url}/charges`, {
          body: { amount: 1 },
          headers: { authorization: 'Bearer test-client', 'idempotency-key': newKey() },
        });
        assert.equal(answer.status, 201, answer.text);
      }
      const health = await send(`${gateway.url}/__idem/ready`, { method: 'GET' });
      assert.equal(health.status, 200, health.text);
    });

    it('drains every worker on SIGTERM and exits 0', async () => {
      const pids = workerPids(gateway);
      assert.equal(await gateway.stop('SIGTERM'), 0, JSON.stringify(gateway.output()));
      assert.match(gateway.output().stderr, /SIGTERM: draining 2 worker\(s\)/);
      assert.match(gateway.output().stderr, /stopped: 2 worker\(s\) exited\./);
      for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} is gone`);
    });
  });
}

describe('idem serve --workers settings', () => {
  it('refuses more than one worker on memory:, naming the stores to use', async () => {
    const run = await runIdem([
      'serve',
      '--upstream',
      'http://127.0.0.1:9',
      '--store',
      'memory:',
      '--workers',
      '2',
      '--no-upstream-check',
    ]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(
      run.stderr,
      /--workers 2 needs a store the workers share: memory: .*sqlite:.*redis:\/\/.*postgres:\/\//,
    );
  });

  it('reads auto and 0 as one worker per core, and refuses what is not a count', () => {
    const base = { upstream: 'http://127.0.0.1:3000' };
    assert.equal(resolveServeConfig(base).workers, 1);
    assert.equal(resolveServeConfig({ ...base, workers: 'auto' }).workers, availableParallelism());
    assert.equal(resolveServeConfig(base, { workers: 0 }).workers, availableParallelism());
    assert.equal(resolveServeConfig(base, { workers: 3 }).workers, 3);
    assert.throws(
      () => resolveServeConfig({ ...base, workers: 'many' }),
      /--workers: "many" is not a number of workers/,
    );
  });
});
