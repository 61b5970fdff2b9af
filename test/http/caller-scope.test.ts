import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { callerScope, type HttpRequestInfo, httpStoreKey } from '../../src/http/index.js';

/** A request carrying exactly these headers (lower-case names). */
function request(headers: Record<string, string | string[]>): HttpRequestInfo {
  return { method: 'POST', route: '/charges', body: undefined, header: (name) => headers[name] };
}

const byDefault = callerScope();
const scopeOf = (headers: Record<string, string | string[]>) => byDefault(request(headers));

describe('callerScope()', () => {
  it('tells callers apart by Authorization and the API-key headers, and ignores cookies then', () => {
    const alice = scopeOf({ authorization: 'Bearer alice', cookie: 'theme=dark' });
    assert.equal(scopeOf({ authorization: 'Bearer alice', cookie: 'theme=light' }), alice);
    assert.notEqual(scopeOf({ authorization: 'Bearer bob' }), alice);
    assert.notEqual(scopeOf({ 'x-api-key': 'Bearer alice' }), alice, 'the header name counts too');
    assert.notEqual(scopeOf({ 'x-api-key': 'k1' }), scopeOf({ 'x-api-key': 'k2' }));
    assert.notEqual(scopeOf({ 'x-auth-token': 't1' }), undefined);
  });

  it('tells callers apart by their cookies when they send no credential header, in any order or spacing', () => {
    const alice = scopeOf({ cookie: 'sid=alice; theme=dark' });
    assert.equal(scopeOf({ cookie: 'theme=dark;sid=alice' }), alice);
    assert.equal(scopeOf({ cookie: ' theme=dark ;  sid=alice ' }), alice);
    assert.notEqual(scopeOf({ cookie: 'sid=bob; theme=dark' }), alice);
    assert.notEqual(scopeOf({ cookie: 'sid=alice' }), alice, 'every cookie counts by default');
  });

  it('tells apart two nameless cookies, which browsers send as a bare value', () => {
    assert.notEqual(scopeOf({ cookie: 'token-a' }), undefined);
    assert.notEqual(scopeOf({ cookie: 'token-a' }), scopeOf({ cookie: 'token-b' }));
  });

  it('sees no caller in blank headers and empty cookies', () => {
    const blank: Record<string, string>[] = [
      {},
      { authorization: '' },
      { authorization: ' \t ' },
      { 'x-api-key': '', cookie: '' },
      { cookie: 'sid=' },
      { cookie: 'sid= ; theme=' },
      { cookie: ' ; ;' },
      { cookie: '=' },
    ];
    for (const headers of blank) {
      assert.equal(scopeOf(headers), undefined, JSON.stringify(headers));
    }
  });

  it('keeps a value with U+00A0 apart from the plain value: only spaces and tabs are trimmed', () => {
    assert.notEqual(scopeOf({ cookie: 'sid=alice\u00a0' }), scopeOf({ cookie: 'sid=alice' }));
  });
});

describe('callerScope({ headers, cookies })', () => {
  const session = callerScope({ cookies: ['sid'] });

  it('scopes by the named cookie only, whatever the other cookies', () => {
    const alice = session(request({ cookie: 'sid=alice; theme=dark' }));
    assert.ok(alice);
    assert.equal(session(request({ cookie: 'theme=light; seen=1; sid=alice' })), alice);
    assert.notEqual(session(request({ cookie: 'sid=bob' })), alice);
    assert.equal(session(request({ cookie: 'theme=dark' })), undefined);
    assert.equal(session(request({ cookie: 'sid=' })), undefined, 'an empty session cookie is no caller');
    assert.equal(session(request({ authorization: 'Bearer alice' })), undefined, 'only what is named counts');
  });

  it('takes the first of a repeated cookie, as browsers send the most specific path first', () => {
    assert.equal(session(request({ cookie: 'sid=alice; sid=bob' })), session(request({ cookie: 'sid=alice' })));
  });

  it('reads named headers in any case', () => {
    const tenant = callerScope({ headers: ['X-Tenant'] });
    assert.ok(tenant(request({ 'x-tenant': 'acme' })));
    assert.notEqual(tenant(request({ 'x-tenant': 'acme' })), tenant(request({ 'x-tenant': 'umbrella' })));
  });

  it('cannot be forged by a value that holds the separator of two parts', () => {
    const two = callerScope({ headers: ['a', 'b'] });
    assert.notEqual(two(request({ a: '1\nh:b:2' })), two(request({ a: '1', b: '2' })));
    assert.notEqual(two(request({ a: ['1', '2'] })), two(request({ a: '1', b: '2' })));
  });
});

describe('httpStoreKey', () => {
  const parts = { scope: 'alice', method: 'POST', route: '/charges', key: 'k1' };

  it('gives a caller one key for every route, or one per method and route with keyPerRoute', () => {
    assert.equal(httpStoreKey(parts), httpStoreKey({ ...parts, method: 'PUT', route: '/other' }));
    assert.notEqual(
      httpStoreKey({ ...parts, keyPerRoute: true }),
      httpStoreKey({ ...parts, keyPerRoute: true, route: '/other' }),
    );
    assert.notEqual(httpStoreKey(parts), httpStoreKey({ ...parts, scope: 'bob' }));
    assert.notEqual(httpStoreKey(parts), httpStoreKey({ ...parts, namespace: 'other-api' }));
  });

  it('keeps the shared anonymous scope apart from any scope a function can return', () => {
    const shared = httpStoreKey({ ...parts, scope: undefined });
    for (const scope of ['', 'anonymous', 'null', '[null]']) {
      assert.notEqual(httpStoreKey({ ...parts, scope }), shared, scope);
    }
  });
});
