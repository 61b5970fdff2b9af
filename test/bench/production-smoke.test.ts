import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const ROOT = new URL('../../', import.meta.url).pathname;

/** Runs `npm run bench` with `args` under tsx, as the script does, and collects its output. */
function bench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/index.ts', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk;
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

// A smoke test: the production part runs end to end and every figure is there. Measures only;
// no figure is judged (no timing assertions). memory and sqlite need no server.
describe('npm run bench -- --only production --quick', () => {
  it('prints the function, HTTP and sweeper tables, every call and request answered', {
    timeout: 300_000,
  }, async () => {
    const run = await bench(['--only', 'production', '--quick', '--stores', 'memory,sqlite']);
    assert.equal(run.code, 0, run.stderr);
    for (const heading of ['PRODUCTION FEATURES', 'Function wrapper:', 'HTTP:', 'Sweeper:', 'uptime at start']) {
      assert.ok(run.stdout.includes(heading), `no ${JSON.stringify(heading)} in:\n${run.stdout}`);
    }
    assert.doesNotMatch(run.stdout, /failed:|NOT VERIFIED|SKIPPED/);
    const { production } = JSON.parse(readFileSync(new URL('bench/results/latest.json', `file://${ROOT}`), 'utf8'));
    const functionRows = production.functions.rows as { store: string; variant: string; failures: number }[];
    for (const store of ['memory', 'sqlite']) {
      for (const variant of ['bare', 'off', 'on-event', 'otel-noop', 'otel-recording', 'encrypted', 'encrypted-otel']) {
        assert.equal(functionRows.filter((row) => row.store === store && row.variant === variant).length, 2);
      }
    }
    assert.ok(functionRows.every((row) => row.failures === 0));
    const httpRows = production.http.rows as { non2xx: number; errors: number; requests: number }[];
    assert.equal(httpRows.length, 14, 'bare and 6 variants on memory, new keys and replays');
    assert.ok(httpRows.every((row) => row.non2xx === 0 && row.errors === 0 && row.requests > 0));
    const sweeperRows = production.sweeper.rows as { store: string; sweeper: boolean; failures: number }[];
    assert.deepEqual(
      sweeperRows.map((row) => [row.store, row.sweeper, row.failures]),
      [
        ['sqlite', false, 0],
        ['sqlite', true, 0],
      ],
    );
  });
});
