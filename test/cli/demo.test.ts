import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { idemArgs, ROOT, runIdem } from './helpers.js';

describe('idem demo', () => {
  it('runs with no server, prints the charges without and with Idem, and exits with --exit', async () => {
    const run = await runIdem(['demo', '--exit', '--port', '0', '--api-port', '0'], { timeoutMs: 60_000 });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, '');
    assert.match(run.stdout, /Retry storm: 5 payments x 20 attempts each/);
    // Without Idem nearly every attempt charges; how many exactly depends on the client timeouts.
    const direct = /^ {2}direct to the API +100 +(\d+) /m.exec(run.stdout);
    assert.ok(direct, run.stdout);
    const directCharges = Number(direct[1]);
    assert.ok(directCharges >= 80, run.stdout);
    assert.match(run.stdout, /^ {2}through idem serve +100 +5 /m);
    assert.match(run.stdout, new RegExp(`Idem: 5 charges instead of ${directCharges}, exactly one per payment`));
    assert.doesNotMatch(run.stdout, /curl/, '--exit stops after the table');
  });

  it('keeps the API and the gateway running and prints curl lines that work as printed', async () => {
    const child = spawn(process.execPath, idemArgs(['demo', '--port', '0', '--api-port', '0', '--payments', '1']), {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no curl lines:\n${stdout}`)), 20_000);
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk;
        if (/__idem\/metrics/.test(stdout)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const curl = stdout.split('\n').filter((line) => line.trim().startsWith('curl -i -X POST'));
    assert.equal(curl.length, 3);
    const gatewayCharge =
      /curl -i -X POST (\S+) -H 'Authorization: (Bearer \S+)' -H 'Idempotency-Key: (\S+)' -H 'Content-Type: application\/json' -d '(.+)'$/.exec(
        curl[0] as string,
      );
    assert.ok(gatewayCharge);
    const [, url, authorization, key, body] = gatewayCharge as unknown as [string, string, string, string, string];
    const post = () =>
      fetch(url, {
        method: 'POST',
        headers: { authorization, 'idempotency-key': key, 'content-type': 'application/json' },
        body,
      });
    const first = await post();
    assert.equal(first.status, 201);
    const again = await post();
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(await again.json(), await first.json());
    child.kill('SIGINT');
    assert.equal(await exited, 0);
    assert.match(stdout, /idem: demo stopped\./);
  });
});
