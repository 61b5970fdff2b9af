// What counts in a request's fingerprint (src/http/request-fingerprint.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HttpRequestInfo } from '../../src/http/http-types.js';
import { requestFingerprint } from '../../src/http/request-fingerprint.js';

function request(body: unknown, contentType?: string, extra: Partial<HttpRequestInfo> = {}): HttpRequestInfo {
  const headers: Record<string, string> = contentType === undefined ? {} : { 'content-type': contentType };
  return { method: 'POST', route: '/charges', body, header: (name) => headers[name], ...extra };
}

const json = 'application/json';
const fp = (info: HttpRequestInfo, options = {}) => requestFingerprint(info, options);

describe('request fingerprint', () => {
  it('reads a JSON body by its value: key order and spacing do not count, values do', () => {
    const a = fp(request('{"amount":100,"currency":"usd"}', json));
    assert.equal(fp(request('{ "currency": "usd",\n "amount": 100 }', json)), a);
    assert.equal(fp(request(Buffer.from('{"currency":"usd","amount":100}'), json)), a);
    assert.equal(fp(request({ currency: 'usd', amount: 100 })), a, 'a parsed body is the same request');
    assert.notEqual(fp(request('{"amount":101,"currency":"usd"}', json)), a);
  });

  it('counts method, route and the target with its query', () => {
    const base = fp(request({ a: 1 }));
    assert.notEqual(fp(request({ a: 1 }, undefined, { method: 'PATCH' })), base);
    assert.notEqual(fp(request({ a: 1 }, undefined, { route: '/refunds' })), base);
    assert.notEqual(fp(request({ a: 1 }, undefined, { url: '/charges?currency=eur' })), base);
  });

  it('reads a form body by its fields, repeats in order', () => {
    const form = 'application/x-www-form-urlencoded';
    assert.equal(fp(request('a=1&b=2', form)), fp(request('b=2&a=1', form)));
    assert.notEqual(fp(request('a=1&a=2', form)), fp(request('a=2&a=1', form)));
  });

  it('counts any other body, and JSON that does not parse, by its bytes', () => {
    assert.notEqual(fp(request('{"a":1}', 'text/plain')), fp(request('{ "a": 1 }', 'text/plain')));
    assert.notEqual(fp(request('{broken', json)), fp(request('{broken ', json)));
    assert.equal(fp(request('{broken', json)), fp(request(Buffer.from('{broken'), json)));
    assert.notEqual(fp(request('', 'text/plain')), fp(request(undefined)), 'an empty body is not no body');
  });

  it('narrows to includePaths, leaves out excludePaths, and adds includeHeaders', () => {
    const sent = (sentAt: string, note: string) => request({ amount: 5, meta: { sentAt, note } });
    assert.equal(
      fp(sent('t1', 'x'), { excludePaths: ['meta.sentAt'] }),
      fp(sent('t2', 'x'), { excludePaths: ['meta.sentAt'] }),
    );
    assert.notEqual(
      fp(sent('t1', 'x'), { excludePaths: ['meta.sentAt'] }),
      fp(sent('t1', 'y'), { excludePaths: ['meta.sentAt'] }),
    );
    assert.equal(fp(sent('t1', 'x'), { includePaths: ['amount'] }), fp(sent('t2', 'y'), { includePaths: ['amount'] }));
    const versioned = (v: string) =>
      request({ a: 1 }, undefined, { header: (name) => (name === 'x-api-version' ? v : undefined) });
    assert.notEqual(
      fp(versioned('1'), { includeHeaders: ['x-api-version'] }),
      fp(versioned('2'), { includeHeaders: ['x-api-version'] }),
    );
    assert.equal(fp(versioned('1')), fp(versioned('2')), 'headers count only when included');
  });
});
