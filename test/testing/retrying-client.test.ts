import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { retryingClient } from '../../src/testing/index.js';
import { type Charge, expressApp } from './apps.js';

const charge = { method: 'POST', path: '/charges', body: { amountCents: 500 } };

describe('retryingClient', () => {
  it('retries a response lost after the server acted and gets the first answer back from Idem', async () => {
    const charges: Charge[] = [];
    const client = await retryingClient(expressApp(new MemoryStore(), charges), { seed: 7 });
    try {
      const sent = await client.send(charge, { faults: ['drop-response'] });
      assert.deepEqual(sent.statuses, [null, 201]);
      assert.equal(sent.attempts[0]?.exchanges[0]?.status, 201, 'the server had answered before the drop');
      assert.equal(sent.replayed, true);
      assert.deepEqual(sent.json, { id: 'ch_1', amountCents: 500 });
      assert.equal(charges.length, 1);
    } finally {
      await client.close();
    }
  });

  it('shows a naive app charging twice when a response is lost, and a duplicate sent at once', async () => {
    const charges: Charge[] = [];
    const client = await retryingClient(expressApp(undefined, charges));
    try {
      await client.send(charge, { faults: ['drop-response'] });
      assert.equal(charges.length, 2);
      const duplicated = await client.send(charge, { faults: ['duplicate'] });
      assert.deepEqual(duplicated.statuses, [201, 201]);
      assert.equal(charges.length, 4);
    } finally {
      await client.close();
    }
  });

  it('retries a timeout and a duplicate with seeded jitter: one charge, the same delays for the same seed', async () => {
    const delays: number[][] = [];
    for (const seed of [42, 42]) {
      const charges: Charge[] = [];
      const client = await retryingClient(expressApp(new MemoryStore(), charges), { seed, faultTimeoutMs: 5 });
      try {
        const sent = await client.send(charge, { faults: ['timeout', 'duplicate', 'drop-request'] });
        assert.equal(sent.ok, true, JSON.stringify(sent.attempts));
        assert.equal(sent.attempts[0]?.status, null);
        assert.equal(charges.length, 1);
        delays.push(sent.attempts.map((attempt) => attempt.delayMs));
      } finally {
        await client.close();
      }
    }
    // How many attempts a run takes depends on timing (a copy that meets the timed-out first
    // request still running gets 409 and is retried), so the runs are compared attempt by attempt:
    // the n-th attempt waits the same jittered delay for the same seed.
    const [first = [], second = []] = delays;
    const common = Math.min(first.length, second.length);
    assert.ok(common >= 2, `each run retried at least once: ${JSON.stringify(delays)}`);
    assert.deepEqual(first.slice(0, common), second.slice(0, common));
  });

  it('refuses a bad option with a message that says what to give', async () => {
    await assert.rejects(retryingClient('http://127.0.0.1:1', { retries: -1 }), /retries -1 must be a whole number/);
  });
});
