// idem/testing in a Vitest suite: the same calls as under node:test; only `it` and `expect` come
// from Vitest. assertIdempotent throws node:assert's AssertionError with the evidence, which Vitest
// prints as the failure. scripts/run-examples.mjs runs it with `npx vitest run --root examples/vitest`.
// In your project: `import { assertIdempotent, checkIdempotency } from 'idem/testing'`.
import express from 'express';
import { describe, expect, it } from 'vitest';
import { idempotency } from '../../src/adapters/express/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { assertIdempotent, checkIdempotency, retryingClient } from '../../src/testing/index.js';

/** POST /charges creates a charge; `protect` puts Idem in front of it. */
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

describe('POST /charges', () => {
  it('is safe to retry behind Idem', async () => {
    const { app, charges } = chargesApp(true);
    const report = await assertIdempotent(app, charge, { verify: () => charges });
    expect(report.ok).toBe(true);
    expect(report.scenarios.map((scenario) => scenario.name)).toContain('concurrent-duplicates');
  }, 30_000);

  it('is not without Idem, and the failure carries the evidence', async () => {
    const { app, charges } = chargesApp(false);
    await expect(assertIdempotent(app, charge, { verify: () => charges })).rejects.toThrow(
      /retry after success \(retry-after-success\): the retry got a different answer/,
    );
    // checkIdempotency returns the same report without throwing, for assertions of your own.
    const report = await checkIdempotency(chargesApp(false).app, charge);
    expect(report.ok).toBe(false);
    expect(report.failed).toContain('retry-after-success');
  }, 30_000);

  it('replays the stored answer when the first response is lost', async () => {
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
});
