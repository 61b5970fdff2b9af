// idem/testing in a node:test suite: assertIdempotent runs the scenarios of `idem check` (a retry
// after success, concurrent duplicates, a dropped connection, the same key with another body, no
// key, retries at varied timing) against an Express app served in-process, and counts the charges
// really created through `verify`. The app behind Idem passes; a naive one fails, and the test
// asserts that failure and its evidence. Vitest and Jest use the same calls (docs/testing.md).
// Run it with `npx tsx examples/check-idempotency.ts`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import express from 'express';
import { idempotency } from '../src/adapters/express/index.js';
import { MemoryStore } from '../src/stores/memory/index.js';
import { assertIdempotent, retryingClient } from '../src/testing/index.js';

/** The app under test: POST /charges creates a charge; `protect` puts Idem in front of it. */
function chargesApp(protect: boolean) {
  const charges: { id: string; amountCents: number }[] = [];
  const app = express();
  app.use(express.json());
  const middleware = protect ? [idempotency({ store: new MemoryStore() })] : [];
  app.post('/charges', ...middleware, (req, res) => {
    const charge = { id: `ch_${charges.length + 1}`, amountCents: Number(req.body.amountCents) };
    charges.push(charge);
    res.status(201).json(charge);
  });
  return { app, charges };
}

const charge = { method: 'POST', path: '/charges', body: { amountCents: 500 } };

test('POST /charges behind Idem is safe to retry', async () => {
  const { app, charges } = chargesApp(true);
  const report = await assertIdempotent(app, charge, { verify: () => charges });
  console.log(`  ${report.scenarios.length} scenarios passed in ${report.durationMs} ms`);
});

test('the same endpoint without Idem is not, and the failure says why', async () => {
  const { app, charges } = chargesApp(false);
  await assert.rejects(assertIdempotent(app, charge, { verify: () => charges }), (error: Error) => {
    assert.equal(error.name, 'AssertionError');
    assert.match(error.message, /5 of 6 scenarios failed/);
    assert.match(error.message, /x retry after success \(retry-after-success\): the retry got a different answer/);
    console.log(`  it fails as expected:\n${error.message.split('\n').slice(0, 6).join('\n')}`);
    return true;
  });
});

test('a retrying client: the response is lost after the server charged, the retry gets it back', async () => {
  const { app, charges } = chargesApp(true);
  const client = await retryingClient(app, { seed: 1 });
  const sent = await client.send(charge, { faults: ['drop-response'] });
  await client.close();
  assert.deepEqual(sent.statuses, [null, 201]);
  assert.equal(sent.replayed, true);
  assert.equal(charges.length, 1);
});
