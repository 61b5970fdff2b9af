import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { assertIdempotent, checkIdempotency } from '../../src/testing/index.js';
import { type Charge, expressApp, fastifyApp, honoApp, koaApp } from './apps.js';

const request = { method: 'POST', path: '/charges', body: { amountCents: 500 } };

describe('checkIdempotency', () => {
  it('passes every scenario on an Express app behind Idem on SQLite, one charge per operation', async () => {
    const charges: Charge[] = [];
    const store = new SqliteStore({ path: ':memory:' });
    const report = await checkIdempotency(expressApp(store, charges), request, { verify: () => charges });
    assert.equal(
      report.ok,
      true,
      JSON.stringify(
        report.scenarios.filter((s) => !s.ok),
        null,
        2,
      ),
    );
    assert.equal(report.target.kind, 'express');
    assert.deepEqual(report.failed, []);
    assert.equal(report.scenarios.length, 6);
    const retry = report.scenarios.find((s) => s.name === 'retry-after-success');
    assert.deepEqual(retry?.evidence.statuses, [201, 201]);
    assert.equal(retry?.evidence.requests[1]?.replayed, true);
    assert.deepEqual(retry?.evidence.verify, { before: 0, after: 1, created: 1, expected: 1 });
    const reused = report.scenarios.find((s) => s.name === 'same-key-other-body');
    assert.deepEqual(reused?.evidence.statuses, [201, 422]);
    assert.equal(reused?.evidence.requests[1]?.otherBody, true);
    await store.close();
  });

  it('fails a naive Express app on the scenarios that repeat a key, with the evidence', async () => {
    const charges: Charge[] = [];
    const report = await checkIdempotency(expressApp(undefined, charges), request, { verify: () => charges.length });
    assert.equal(report.ok, false);
    assert.deepEqual(report.failed, [
      'retry-after-success',
      'concurrent-duplicates',
      'dropped-connection',
      'same-key-other-body',
      'varied-timing',
    ]);
    const noKey = report.scenarios.find((s) => s.name === 'no-key');
    assert.equal(noKey?.ok, true);
    const retry = report.scenarios.find((s) => s.name === 'retry-after-success');
    assert.match(retry?.problem ?? '', /the request ran again/);
    assert.equal(retry?.evidence.verify?.created, 2);
    assert.match(retry?.evidence.requests[0]?.body ?? '', /"id":"ch_1"/);
    assert.match(retry?.evidence.requests[1]?.body ?? '', /"id":"ch_2"/);
    const concurrent = report.scenarios.find((s) => s.name === 'concurrent-duplicates');
    assert.equal(concurrent?.evidence.requests.length, 11, 'ten at once, then one once settled');
    assert.ok((concurrent?.evidence.verify?.created ?? 0) > 1);
  });

  it('asserts with an AssertionError that names each failed scenario and its evidence', async () => {
    const charges: Charge[] = [];
    await assert.rejects(
      assertIdempotent(expressApp(undefined, charges), request, { only: ['retry-after-success', 'no-key'] }),
      (error: Error) => {
        assert.equal(error.name, 'AssertionError');
        assert.match(error.message, /is not safe to retry: 1 of 2 scenarios failed \(retry-after-success\)/);
        assert.match(error.message, /x retry after success \(retry-after-success\): the retry got a different answer/);
        assert.match(error.message, /2nd {2}201 \{"id":"ch_2"/);
        assert.doesNotMatch(error.message, /x no key/);
        return true;
      },
    );
    const report = await assertIdempotent(expressApp(new MemoryStore(), []), request, {
      only: ['retry-after-success'],
    });
    assert.equal(report.ok, true);
  });

  it('serves Fastify, Koa and Hono apps and a node:http listener in-process', async () => {
    const store = new MemoryStore();
    const only = ['retry-after-success', 'same-key-other-body'] as const;
    const charges: Charge[] = [];
    const fastify = await fastifyApp(store, charges);
    for (const [target, kind] of [
      [fastify, 'fastify'],
      [koaApp(store, charges), 'koa'],
      [honoApp(store, charges), 'fetch'],
      [(_req: unknown, res: import('node:http').ServerResponse) => res.writeHead(201).end('{}'), 'node-listener'],
    ] as const) {
      const report = await checkIdempotency(target, request, { only });
      assert.equal(report.target.kind, kind);
      if (kind === 'node-listener')
        assert.equal(report.ok, false, 'a listener without Idem answers 201 to a reused key');
      else assert.equal(report.ok, true, `${kind}: ${JSON.stringify(report.scenarios)}`);
    }
    await fastify.close();
  });

  it('checks a URL target, its own path or the request path', async () => {
    const charges: Charge[] = [];
    const server = createServer(expressApp(new MemoryStore(), charges));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const report = await checkIdempotency(base, request, { verify: () => charges });
      assert.equal(report.ok, true, JSON.stringify(report.failed));
      assert.equal(report.target.kind, 'url');
      const own = await checkIdempotency(
        `${base}/charges`,
        { method: 'post', body: { amountCents: 1 } },
        { only: ['retry-after-success'] },
      );
      assert.equal(own.ok, true);
      assert.equal(own.target.url, `${base}/charges`);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('refuses bad input with errors that say what to do, and never hangs', async () => {
    const app = expressApp(new MemoryStore(), []);
    await assert.rejects(checkIdempotency(42 as never, request), /cannot serve a target of type number/);
    await assert.rejects(checkIdempotency({ listen: 1 } as never, request), /Pass a URL string, a node:http/);
    await assert.rejects(checkIdempotency('ftp://x', request), /must be an http:\/\/ or https:\/\/ URL/);
    await assert.rejects(checkIdempotency(app, { path: '/charges' } as never), /request\.method is missing/);
    await assert.rejects(checkIdempotency(app, { method: 'POST' }), /request\.path is missing/);
    await assert.rejects(checkIdempotency(app, { method: 'GET', path: '/charges' }), /GET is safe by definition/);
    await assert.rejects(checkIdempotency(app, request, { only: ['nope' as never] }), /no scenario "nope"/);
    await assert.rejects(
      checkIdempotency(app, request, {
        verify: () => {
          throw new Error('database is down');
        },
      }),
      /verify failed before the first scenario: database is down\. Fix verify/,
    );
    let calls = 0;
    await assert.rejects(
      checkIdempotency(app, request, {
        verify: () => (++calls > 1 ? new Promise(() => {}) : 0),
        timeoutMs: 200,
      }),
      /verify failed in the "retry-after-success" scenario: it did not settle within 200 ms/,
    );
    await assert.rejects(checkIdempotency(app, request, { verify: () => 'many' }), /verify returned "many"/);
  });
});
