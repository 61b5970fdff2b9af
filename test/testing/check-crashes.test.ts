import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertCrashSafe, checkCrashes } from '../../src/testing/index.js';

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url);

describe('checkCrashes', () => {
  it('finds the effect a function wrapped by idempotent() repeats when killed between two effects', async () => {
    const report = await checkCrashes(fixture('crash-function.ts'), { rerunDelayMs: 400 });
    assert.equal(report.ok, false);
    assert.deepEqual(report.expected, { 'charge order-1': 1, 'email order-1': 1 });
    const broken = report.points.filter((point) => !point.ok);
    assert.ok(broken.length > 0);
    const between = report.points.find((point) => point.boundary === 'after effect "charge order-1"');
    assert.equal(between?.killed, true);
    assert.equal(between?.completed, true);
    assert.deepEqual(between?.duplicated, ['charge order-1']);
    assert.match(between?.problem ?? '', /"charge order-1" happened 2 times, 1 without a kill/);
    const afterComplete = report.points.find((point) => point.boundary === 'after complete');
    assert.equal(afterComplete?.ok, true, 'a kill after the result was stored repeats nothing');
    await assert.rejects(
      assertCrashSafe(fixture('crash-function.ts'), { rerunDelayMs: 400, maxPoints: 2 }),
      (error: Error) => {
        assert.equal(error.name, 'AssertionError');
        assert.match(error.message, /killed at #\d+ after effect "charge order-1": "charge order-1" happened 2 times/);
        return true;
      },
    );
  });

  it('passes a workflow whose steps pass their derived key to a provider that honours it', async () => {
    const report = await assertCrashSafe(fixture('crash-workflow.ts'), { rerunDelayMs: 400 });
    assert.ok(report.points.length >= 3, JSON.stringify(report.boundaries));
    assert.ok(report.points.every((point) => point.killed && point.completed));
    assert.deepEqual(report.expected, { 'charge order-1': 1, 'email order-1': 1 });
  });

  it('refuses a module that does not exist', async () => {
    await assert.rejects(checkCrashes('/nowhere/scenario.ts'), /no module at \/nowhere\/scenario\.ts/);
  });
});
