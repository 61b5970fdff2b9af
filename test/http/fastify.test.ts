import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { idempotency } from '../../src/adapters/fastify/index.js';
import { isIdempotencyError } from '../../src/core/errors.js';
import type { HttpIdempotencyOptions } from '../../src/http/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import {
  ConformanceApp,
  type NeutralResponse,
  type RunningServer,
  runHttpConformance,
  send,
} from '../../src/testing/index.js';
import { createStore as postgresStore } from '../stores/postgres.factory.js';
import { createStore as redisStore } from '../stores/redis.factory.js';
import { CALLER } from './serve.js';

function reply(response: NeutralResponse, to: FastifyReply): FastifyReply {
  to.code(response.status).headers(response.headers);
  if (response.stream) return to.send(Readable.from(response.stream));
  const { body } = response;
  return to.send(body instanceof Uint8Array ? Buffer.from(body.buffer, body.byteOffset, body.byteLength) : body);
}

async function listen(server: FastifyInstance): Promise<RunningServer> {
  const url = await server.listen({ port: 0, host: '127.0.0.1' });
  return {
    url,
    close: async () => {
      server.server.closeAllConnections();
      await server.close();
    },
  };
}

async function start(options: HttpIdempotencyOptions, app: ConformanceApp): Promise<RunningServer> {
  const server = Fastify();
  await server.register(idempotency, options);
  for (const route of ConformanceApp.routes) {
    server.route({
      method: route.method,
      url: route.path,
      handler: async (request, to) => reply(await app.handle(route.op, request.body), to),
    });
  }
  return listen(server);
}

runHttpConformance({ name: 'fastify on memory', start });
runHttpConformance({ name: 'fastify on postgres', start, createStore: () => postgresStore('http_conformance') });
runHttpConformance({ name: 'fastify on redis', start, createStore: () => redisStore('http_conformance') });

describe('fastify adapter', () => {
  /** Counts runs per route; every route answers 201 with the run number. */
  function counting() {
    const runs = new Map<string, number>();
    const handler = (name: string) => async (_request: unknown, to: FastifyReply) => {
      const n = (runs.get(name) ?? 0) + 1;
      runs.set(name, n);
      return to.code(201).send({ name, run: n });
    };
    return { runs, handler };
  }

  const post = (url: string, path: string, key?: string) =>
    send(`${url}${path}`, {
      body: { amount: 1 },
      headers: { ...CALLER, ...(key === undefined ? {} : { 'idempotency-key': key }) },
    });

  it('turns Idem off for a route with config.idempotency: false', async () => {
    const { runs, handler } = counting();
    const server = Fastify();
    await server.register(idempotency, { store: new MemoryStore() });
    server.post('/protected', handler('protected'));
    server.post('/webhook', { config: { idempotency: false } }, handler('webhook'));
    const running = await listen(server);
    try {
      const k = randomUUID();
      await post(running.url, '/webhook', k);
      const again = await post(running.url, '/webhook', k);
      assert.equal(again.headers['idempotent-replayed'], undefined);
      assert.equal(runs.get('webhook'), 2);
      await post(running.url, '/protected', k);
      assert.equal((await post(running.url, '/protected', k)).headers['idempotent-replayed'], 'true');
      assert.equal(runs.get('protected'), 1);
    } finally {
      await running.close();
    }
  });

  it('requires a key on one route with config.idempotency: { required: true } while others stay optional', async () => {
    const { runs, handler } = counting();
    const server = Fastify();
    await server.register(idempotency, { store: new MemoryStore() });
    server.post('/refunds', { config: { idempotency: { required: true } } }, handler('refunds'));
    server.post('/charges', handler('charges'));
    const running = await listen(server);
    try {
      const refused = await post(running.url, '/refunds');
      assert.equal(refused.status, 400);
      assert.equal((refused.json as { code: string }).code, 'KEY_MISSING');
      assert.equal(runs.get('refunds'), undefined);
      assert.equal((await post(running.url, '/charges')).status, 201);
      const k = randomUUID();
      const first = await post(running.url, '/refunds', k);
      const again = await post(running.url, '/refunds', k);
      assert.deepEqual(again.json, first.json);
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(runs.get('refunds'), 1);
    } finally {
      await running.close();
    }
  });

  it('protects PUT on one route when its config lists PUT in methods', async () => {
    const { runs, handler } = counting();
    const server = Fastify();
    await server.register(idempotency, { store: new MemoryStore() });
    server.put('/documents', { config: { idempotency: { methods: ['PUT'] } } }, handler('documents'));
    server.put('/drafts', handler('drafts'));
    const running = await listen(server);
    try {
      const k = randomUUID();
      for (const path of ['/documents', '/documents', '/drafts', '/drafts']) {
        await send(`${running.url}${path}`, {
          method: 'PUT',
          body: { v: 1 },
          headers: { ...CALLER, 'idempotency-key': k },
        });
      }
      assert.equal(runs.get('documents'), 1);
      assert.equal(runs.get('drafts'), 2);
    } finally {
      await running.close();
    }
  });

  it('refuses bad per-route options when the route is declared', async () => {
    const server = Fastify();
    await server.register(idempotency, { store: new MemoryStore() });
    assert.throws(
      () => server.post('/charges', { config: { idempotency: { methods: ['GET'] } } }, async () => ({})),
      (error) => isIdempotencyError(error, 'INVALID_OPTIONS'),
    );
    await server.close();
  });

  it('applies to the context it is registered in and its children, not to sibling plugins', async () => {
    const { runs, handler } = counting();
    const server = Fastify();
    await server.register(
      async (payments) => {
        await payments.register(idempotency, { store: new MemoryStore() });
        payments.post('/charges', handler('charges'));
        await payments.register(async (nested) => {
          nested.post('/refunds', handler('refunds'));
        });
      },
      { prefix: '/payments' },
    );
    await server.register(
      async (hooks) => {
        hooks.post('/events', handler('events'));
      },
      { prefix: '/hooks' },
    );
    const running = await listen(server);
    try {
      for (const path of ['/payments/charges', '/payments/refunds', '/hooks/events']) {
        const k = randomUUID();
        await post(running.url, path, k);
        await post(running.url, path, k);
      }
      assert.equal(runs.get('charges'), 1);
      assert.equal(runs.get('refunds'), 1);
      assert.equal(runs.get('events'), 2, 'a sibling context is not protected');
    } finally {
      await running.close();
    }
  });

  it('stores a 402 the error handler sent for a thrown error with that status, and replays it', async () => {
    let runs = 0;
    const server = Fastify();
    await server.register(idempotency, { store: new MemoryStore() });
    server.post('/accounts', async () => {
      runs += 1;
      throw Object.assign(new Error('card declined'), { statusCode: 402 });
    });
    const running = await listen(server);
    try {
      const k = randomUUID();
      const first = await post(running.url, '/accounts', k);
      assert.equal(first.status, 402);
      const again = await post(running.url, '/accounts', k);
      assert.equal(again.status, 402);
      assert.deepEqual(again.json, first.json);
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(runs, 1);
    } finally {
      await running.close();
    }
  });

  it('keeps no record for a POST to a path no route serves', async () => {
    const store = new MemoryStore();
    const server = Fastify();
    await server.register(idempotency, { store });
    const running = await listen(server);
    try {
      const k = randomUUID();
      assert.equal((await post(running.url, '/nowhere', k)).status, 404);
      const again = await post(running.url, '/nowhere', k);
      assert.equal(again.status, 404);
      assert.equal(again.headers['idempotent-replayed'], undefined);
    } finally {
      await running.close();
    }
  });

  it('releases the key for a thrown error even with the stripe preset', async () => {
    let runs = 0;
    const server = Fastify();
    await server.register(idempotency, { store: new MemoryStore(), policy: 'stripe' });
    server.post('/charges', async () => {
      runs += 1;
      throw new Error('database down');
    });
    const running = await listen(server);
    try {
      const k = randomUUID();
      assert.equal((await post(running.url, '/charges', k)).status, 500);
      assert.equal((await post(running.url, '/charges', k)).status, 500);
      assert.equal(runs, 2);
    } finally {
      await running.close();
    }
  });

  it('stores a 500 the handler sent itself with the stripe preset', async () => {
    let runs = 0;
    const server = Fastify();
    await server.register(idempotency, { store: new MemoryStore(), policy: 'stripe' });
    server.post('/charges', async (_request, to) => {
      runs += 1;
      return to.code(500).send({ error: 'upstream failed' });
    });
    const running = await listen(server);
    try {
      const k = randomUUID();
      await post(running.url, '/charges', k);
      const again = await post(running.url, '/charges', k);
      assert.equal(again.status, 500);
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(runs, 1);
    } finally {
      await running.close();
    }
  });

  it('records a web Response returned by the handler, with its status and headers', async () => {
    let runs = 0;
    const server = Fastify();
    await server.register(idempotency, { store: new MemoryStore() });
    server.post('/exports', async () => {
      runs += 1;
      return new Response(`export ${runs}`, { status: 202, headers: { location: `/exports/${runs}` } });
    });
    const running = await listen(server);
    try {
      const k = randomUUID();
      const first = await post(running.url, '/exports', k);
      assert.equal(first.status, 202);
      const again = await post(running.url, '/exports', k);
      assert.equal(again.status, 202);
      assert.equal(again.text, 'export 1');
      assert.equal(again.headers.location, '/exports/1');
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(runs, 1);
    } finally {
      await running.close();
    }
  });

  it('stores the full body of a handler that finishes after its client gave up', async () => {
    const store = new MemoryStore();
    const app = new ConformanceApp();
    const running = await start({ store, leaseMs: 10_000 }, app);
    try {
      const k = randomUUID();
      await assert.rejects(
        send(`${running.url}/slow`, {
          body: { ms: 200 },
          headers: { ...CALLER, 'idempotency-key': k },
          abortAfterMs: 30,
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 350));
      const retry = await send(`${running.url}/slow`, {
        body: { ms: 200 },
        headers: { ...CALLER, 'idempotency-key': k },
      });
      assert.equal(retry.headers['idempotent-replayed'], 'true');
      assert.deepEqual(retry.json, { id: 'sl_1' });
    } finally {
      await running.close();
      await store.close();
    }
  });
});
