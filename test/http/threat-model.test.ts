/**
 * Two gaps found while writing docs/threat-model.md, closed since: a planted header is not
 * replayed, and the open health endpoints do not name the upstream.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Gateway } from '../../src/cli/gateway/gateway.js';
import { OutcomeCodec, OutcomeKind } from '../../src/core/outcome.js';
import { HttpIdempotency } from '../../src/http/http-idempotency.js';
import type { HttpRequestInfo } from '../../src/http/http-types.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { send } from '../../src/testing/http-client.js';

/** A stored response as `ResponseRecording` writes it: 4-byte head length, JSON head, body. */
function storedResponse(status: number, headers: [string, string][], body: string): Uint8Array {
  const head = Buffer.from(JSON.stringify([status, headers]));
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(head.length, 0);
  return Buffer.concat([prefix, head, Buffer.from(body)]);
}

const request: HttpRequestInfo = {
  method: 'POST',
  route: '/charges',
  url: '/charges',
  body: undefined,
  header: (name) => (name === 'idempotency-key' ? '"k-1"' : name === 'authorization' ? 'Bearer alice' : undefined),
};

describe('threat model gaps', () => {
  it('never replays Set-Cookie or hop-by-hop headers, even when a store writer planted them (no encryptionKey)', async () => {
    const store = new MemoryStore();
    const http = new HttpIdempotency({ store });
    const identified = http.identify(request);
    assert.equal(identified.action, 'identified');
    if (identified.action !== 'identified') return;
    const { storeKey, fingerprint } = identified.identity;
    const nowMs = Date.now();
    // Someone who can write to the store plants a response for Alice's key.
    await store.claim({
      key: storeKey,
      fingerprint,
      token: 't',
      nowMs,
      leaseExpiresAtMs: nowMs + 1000,
      expiresAtMs: nowMs + 60_000,
    });
    const payload = storedResponse(
      201,
      [
        ['content-type', 'application/json'],
        ['set-cookie', 'sid=planted'],
      ],
      '{}',
    );
    const result = new OutcomeCodec().encode({ kind: OutcomeKind.value, payload }, storeKey);
    await store.complete({ key: storeKey, token: 't', result, nowMs, expiresAtMs: nowMs + 60_000 });

    const decision = await http.begin(request);
    assert.equal(decision.action, 'respond');
    if (decision.action !== 'respond') return;
    const names = decision.response.headers.map(([name]) => name.toLowerCase());
    assert.ok(!names.includes('set-cookie'), `replayed headers: ${names.join(', ')}`);
  });

  it('never tells clients of /__idem/health the address of the upstream', async () => {
    const gateway = new Gateway({ upstream: 'http://10.1.2.3:3000/internal', store: new MemoryStore() });
    try {
      const url = await gateway.listen(0);
      const health = await send(`${url}/__idem/health`, { method: 'GET' });
      assert.equal(health.status, 200);
      assert.ok(!health.text.includes('10.1.2.3'), `the health body names the upstream: ${health.text}`);
    } finally {
      await gateway.close();
    }
  });
});
