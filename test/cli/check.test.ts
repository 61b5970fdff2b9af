import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CheckReport } from '../../src/cli/check/check-report.js';
import { type RunningIdem, runIdem, startIdem, TestUpstream } from './helpers.js';

describe('idem check', () => {
  const upstream = new TestUpstream();
  let gateway: RunningIdem;

  before(async () => {
    await upstream.start();
    gateway = await startIdem(['--upstream', upstream.url, '--store', 'memory:']);
  });
  after(async () => {
    await gateway.stop();
    await upstream.close();
  });

  it('fails a plain non-idempotent endpoint, exits 1 and names every failing scenario', async () => {
    const run = await runIdem([...checkCharges(upstream.url)]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stdout, /^FAIL {2}retry after success .*the request ran again/m);
    assert.match(run.stdout, /^FAIL {2}concurrent duplicates .*10 of the duplicates ran/m);
    assert.match(run.stdout, /^FAIL {2}retry after a dropped connection/m);
    assert.match(run.stdout, /^FAIL {2}same key, another body .*expected 422/m);
    assert.match(run.stdout, /^FAIL {2}retries at varied timing/m);
    assert.match(
      run.stdout,
      /5 of 6 scenarios failed: retry-after-success, concurrent-duplicates, dropped-connection, same-key-other-body, varied-timing\./,
    );
    assert.equal(run.stderr, '');
  });

  it('reports the same verdict as JSON, with what --verify counted', async () => {
    const run = await runIdem([...checkCharges(upstream.url), '--json', '--only', 'retry-after-success,no-key']);
    assert.equal(run.code, 1);
    const report = JSON.parse(run.stdout) as CheckReport;
    assert.equal(report.passed, false);
    assert.deepEqual(report.failed, ['retry-after-success']);
    assert.deepEqual(
      report.scenarios.map((s) => [s.id, s.passed, s.created]),
      [
        ['retry-after-success', false, 2],
        ['no-key', true, 2],
      ],
    );
    assert.ok(
      report.scenarios[0]?.evidence.some((line) => line.includes('ch_')),
      'the evidence shows the answers',
    );
  });

  it('passes the same endpoint behind idem serve and exits 0, one record per key', async () => {
    const run = await runIdem([...checkCharges(gateway.url)]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal((run.stdout.match(/^PASS/gm) ?? []).length, 6);
    assert.match(run.stdout, /^PASS {2}same key, another body .*refused with 422; 1 created/m);
    assert.match(run.stdout, /^PASS {2}concurrent duplicates .*one ran.*; 1 created/m);
    assert.match(run.stdout, /all 6 scenarios passed\./);
  });

  it('passes the gateway without --verify too, by comparing the answers', async () => {
    const run = await runIdem(['check', `${gateway.url}/charges`, '-H', 'authorization: Bearer checker']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /no --verify/);
    assert.ok(
      upstream.charges.some((charge) => charge.auth === 'Bearer checker'),
      '--header reaches the endpoint',
    );
  });

  it('says in one line that an endpoint cannot be reached, and exits 1', async () => {
    const run = await runIdem(['check', 'http://127.0.0.1:1/charges']);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.match(
      run.stderr,
      /^idem: cannot reach the endpoint http:\/\/127\.0\.0\.1:1: connect ECONNREFUSED 127\.0\.0\.1:1\. .*\n$/,
    );
  });
});

/** `idem check` of a charges endpoint, counting what it created through --verify on the same URL. */
function checkCharges(baseUrl: string): string[] {
  return ['check', `${baseUrl}/charges`, '--body', '{"amount":500}', '--verify', `${baseUrl}/charges`];
}
