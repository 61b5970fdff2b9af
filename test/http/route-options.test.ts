import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeRouteSettings, routeIdempotency } from '../../src/adapters/shared/route-options.js';
import { isIdempotencyError } from '../../src/core/errors.js';
import { MemoryStore } from '../../src/stores/memory/index.js';

describe('per-route options, the same for every adapter', () => {
  it('turns a route off, shares the adapter layer, or builds one layer per setting object', () => {
    const httpFor = routeIdempotency({ store: new MemoryStore() });
    const shared = httpFor(undefined);
    assert.ok(shared);
    assert.equal(httpFor(false), undefined);
    assert.equal(httpFor(true), shared);
    assert.equal(httpFor({}), shared);
    const strict = { required: true };
    const own = httpFor(strict);
    assert.ok(own !== undefined && own !== shared);
    assert.equal(own.options.required, true);
    assert.equal(httpFor(strict), own, 'built once per setting object');
  });

  it("keeps the adapter's store whatever the route's options hold", () => {
    const store = new MemoryStore();
    const httpFor = routeIdempotency({ store });
    const other = new MemoryStore();
    assert.equal(httpFor({ store: other } as never)?.options.store, store);
  });

  it('throws on bad route options when asked, so adapters can check them as routes are declared', () => {
    const httpFor = routeIdempotency({ store: new MemoryStore() });
    assert.throws(
      () => httpFor({ methods: ['GET'] }),
      (error) => isIdempotencyError(error, 'INVALID_OPTIONS'),
    );
  });

  it("merges a controller's setting and a handler's, the handler's winning", () => {
    assert.equal(mergeRouteSettings(undefined, undefined), undefined);
    assert.deepEqual(mergeRouteSettings({ required: true, policy: 'stripe' }, { required: false }), {
      required: false,
      policy: 'stripe',
    });
    assert.equal(mergeRouteSettings({ required: true }, false), false);
    assert.deepEqual(mergeRouteSettings(false, { required: true }), { required: true });
    assert.deepEqual(mergeRouteSettings({ required: true }, undefined), { required: true });
  });
});
