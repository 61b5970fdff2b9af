// idem/testing in a Jest suite: the same calls as under node:test and Vitest; `test` and `expect`
// are Jest's globals. assertIdempotent throws node:assert's AssertionError with the evidence, which
// Jest prints as the failure. Idem is ES modules: Jest on Node 20 and 22 loads them in its ESM mode
// (`node --experimental-vm-modules node_modules/.bin/jest`), as scripts/run-examples.mjs runs this
// file after the build; Jest's CommonJS mode can require() them only on Node 24.9 and later.
import express from 'express';
import { idempotency } from 'idem/express';
import { MemoryStore } from 'idem/memory';
import { assertIdempotent, checkIdempotency, retryingClient } from 'idem/testing';

/** POST /charges creates a charge; `protect` puts Idem in front of it. */
function chargesApp(protect) {
  const charges = [];
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

// A check takes one to two seconds: raise Jest's 5 s default when a test checks several endpoints.
const CHECK_TIMEOUT_MS = 30_000;

test(
  'POST /charges behind Idem is safe to retry',
  async () => {
    const { app, charges } = chargesApp(true);
    const report = await assertIdempotent(app, charge, { verify: () => charges });
    expect(report.ok).toBe(true);
  },
  CHECK_TIMEOUT_MS,
);

test(
  'without Idem it is not, and the failure carries the evidence',
  async () => {
    const { app, charges } = chargesApp(false);
    await expect(assertIdempotent(app, charge, { verify: () => charges })).rejects.toThrow(
      /retry after success \(retry-after-success\): the retry got a different answer/,
    );
    const report = await checkIdempotency(chargesApp(false).app, charge);
    expect(report.failed).toContain('retry-after-success');
  },
  CHECK_TIMEOUT_MS,
);

test('a lost response is replayed, not run again', async () => {
  const { app, charges } = chargesApp(true);
  const client = await retryingClient(app, { seed: 1 });
  try {
    const sent = await client.send(charge, { faults: ['drop-response'] });
    expect(sent.statuses).toEqual([null, 201]);
    expect(sent.replayed).toBe(true);
    expect(charges).toHaveLength(1);
  } finally {
    await client.close();
  }
});
