import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { callerScope } from '../../src/http/caller-scope.js';
import type { HttpRequestInfo } from '../../src/http/http-types.js';
import { requestFingerprint } from '../../src/http/request-fingerprint.js';

// Scopes and fingerprints are part of every stored record's key and check: a change to how they
// are computed would turn every stored key into a new one (or a 422) after an upgrade. These
// values were computed by Idem 0.x before the HTTP path was optimised; they must never change.
const headers: Record<string, string> = {
  authorization: 'Bearer bench-client',
  'content-type': 'application/json',
  'x-api-version': '2',
};
const request = (body: unknown, header = (name: string) => headers[name]): HttpRequestInfo => ({
  method: 'POST',
  route: '/orders',
  url: '/orders?x=1',
  header,
  body,
});

describe('scopes and fingerprints of stored records', () => {
  it('scopes a caller by its credential header, or its cookies in any order, as before', () => {
    assert.equal(callerScope()(request(undefined)), '0lY1C4C3_qEX2l6DAASbtlNT6Z9b58CFWY4KZT-ViVE');
    const cookies = request(undefined, (name) => (name === 'cookie' ? 'b=2; a=1' : undefined));
    assert.equal(callerScope()(cookies), 'mL4YmLkDQUXnzub5PphLz5kXeTmVNE9VC7TxeKULjTg');
  });

  it('fingerprints parsed JSON, JSON text, bytes, no body and chosen headers as before', () => {
    assert.equal(
      requestFingerprint(request({ b: [1, 'x'], a: { c: null } })),
      'X0CIGaGXwvlXDmR37opeza_9JZ5jNM4Zy7uxARxWjZE',
    );
    assert.equal(requestFingerprint(request('{"a":1}')), 'o7YTxiGwzJ1FxvHYlWvBJNX8x5y3sg9TrkVywsyrASM');
    const text = (name: string) => (name === 'content-type' ? 'text/plain' : headers[name]);
    assert.equal(requestFingerprint(request(Buffer.from('abc'), text)), 'CmeXYz5RBurmWNn2dLhnfBHUsoohH2CLJxyq1dFPTfs');
    assert.equal(requestFingerprint(request(undefined)), 'kZV7HPBLcCEIvsI3tutBM7kCJFW2U7_OafR2Wm1oyhM');
    assert.equal(
      requestFingerprint(request({ a: 1 }), { includeHeaders: ['x-api-version'] }),
      'oUn6VFYdEGvzo7W2ScBmQCcwcIjVRcM1eAyMD7uzVUU',
    );
  });
});
