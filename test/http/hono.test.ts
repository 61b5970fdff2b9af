import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { request, type Server } from 'node:http';
import { describe, it } from 'node:test';
import { createAdaptorServer } from '@hono/node-server';
import { type Context, Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { type HonoIdempotencyOptions, idempotency } from '../../src/adapters/hono/index.js';
import type { HttpIdempotencyOptions } from '../../src/http/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import {
  ConformanceApp,
  type NeutralResponse,
  type RunningServer,
  runHttpConformance,
  send,
} from '../../src/testing/index.js';
import { createStore as redisStore } from '../stores/redis.factory.js';
import { CALLER, listen } from './serve.js';

function toResponse(response: NeutralResponse): Response {
  const { stream } = response;
  const body =
    stream === undefined
      ? (response.body ?? null)
      : new ReadableStream<Uint8Array>({
          async start(controller) {
            const encoder = new TextEncoder();
            for await (const chunk of stream) controller.enqueue(encoder.encode(chunk));
            controller.close();
          },
        });
  return new Response(body, { status: response.status, headers: response.headers });
}

async function jsonBody(c: Context): Promise<unknown> {
  if (!/json/.test(c.req.header('content-type') ?? '')) return undefined;
  return c.req.json().catch(() => undefined);
}

function serve(app: Hono): Promise<RunningServer> {
  return listen(createAdaptorServer({ fetch: app.fetch }) as Server);
}

/** The conformance app with the middleware on each route, as the Hono docs mount middleware. */
async function start(options: HttpIdempotencyOptions, conformance: ConformanceApp): Promise<RunningServer> {
  const app = new Hono();
  const middleware = idempotency(options);
  for (const route of ConformanceApp.routes) {
    app.on(route.method, route.path, middleware, async (c) =>
      toResponse(await conformance.handle(route.op, await jsonBody(c))),
    );
  }
  // Quiet the default handler's stack traces: a thrown handler is part of the suite.
  app.onError((error, c) =>
    error instanceof HTTPException ? error.getResponse() : c.json({ error: 'internal' }, 500),
  );
  return serve(app);
}

/** The same app with one middleware mounted app-wide, before the routes. */
async function startAppWide(options: HttpIdempotencyOptions, conformance: ConformanceApp): Promise<RunningServer> {
  const app = new Hono();
  app.use('*', idempotency(options));
  for (const route of ConformanceApp.routes) {
    app.on(route.method, route.path, async (c) => toResponse(await conformance.handle(route.op, await jsonBody(c))));
  }
  app.onError((_error, c) => c.json({ error: 'internal' }, 500));
  return serve(app);
}

runHttpConformance({ name: 'hono on memory', start });
runHttpConformance({ name: 'hono mounted app-wide on memory', start: startAppWide });
runHttpConformance({ name: 'hono on redis', start, createStore: () => redisStore('http_conformance') });

const post = (url: string, key: string | undefined, body: unknown = { amount: 500 }) =>
  send(url, { body, headers: { ...CALLER, ...(key === undefined ? {} : { 'idempotency-key': key }) } });

describe('hono adapter', () => {
  it('applies the options of each route: a key is required on one route and optional on another', async () => {
    const store = new MemoryStore();
    const app = new Hono();
    let runs = 0;
    app.post('/strict', idempotency({ store, required: true }), (c) => c.json({ run: ++runs }, 201));
    app.post('/loose', idempotency({ store }), (c) => c.json({ run: ++runs }, 201));
    const server = await serve(app);
    try {
      const strict = await post(`${server.url}/strict`, undefined);
      assert.equal(strict.status, 400);
      assert.equal((strict.json as { code: string }).code, 'KEY_MISSING');
      assert.equal((await post(`${server.url}/loose`, undefined)).status, 201);
      assert.equal(runs, 1);
    } finally {
      await server.close();
      await store.close();
    }
  });

  it('scopes keys by the route pattern of the handler when mounted under a wildcard', async () => {
    const store = new MemoryStore();
    const routes: string[] = [];
    const app = new Hono();
    app.use(
      '/api/*',
      idempotency({
        store,
        fingerprint: (request) => {
          routes.push(request.route);
          return 'same';
        },
      }),
    );
    app.post('/api/charges/:id', (c) => c.json({ id: c.req.param('id') }, 201));
    const server = await serve(app);
    try {
      await post(`${server.url}/api/charges/ch_1`, randomUUID());
      assert.deepEqual(routes, ['/api/charges/:id']);
    } finally {
      await server.close();
      await store.close();
    }
  });

  it('stores a 5xx on a route whose own middleware uses the stripe preset', async () => {
    const store = new MemoryStore();
    const app = new Hono();
    let runs = 0;
    app.post('/charges', idempotency({ store, namespace: 'charges', policy: 'stripe' }), (c) => {
      runs += 1;
      return c.json({ error: 'upstream failed' }, 502);
    });
    const server = await serve(app);
    try {
      const k = randomUUID();
      assert.equal((await post(`${server.url}/charges`, k)).status, 502);
      const again = await post(`${server.url}/charges`, k);
      assert.equal(again.status, 502);
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(runs, 1);
    } finally {
      await server.close();
      await store.close();
    }
  });

  it('stores and replays the answer of an HTTPException, but releases the key of any other thrown error', async () => {
    const store = new MemoryStore();
    const app = new Hono();
    let refusals = 0;
    let failures = 0;
    const options: HonoIdempotencyOptions = { store, policy: 'stripe' };
    app.post('/refuse', idempotency(options), () => {
      refusals += 1;
      throw new HTTPException(402, { message: 'card declined' });
    });
    app.post('/fail', idempotency(options), () => {
      failures += 1;
      throw new Error('bug');
    });
    app.onError((error, c) => (error instanceof HTTPException ? error.getResponse() : c.text('internal', 500)));
    const server = await serve(app);
    try {
      const k = randomUUID();
      assert.equal((await post(`${server.url}/refuse`, k)).status, 402);
      const replay = await post(`${server.url}/refuse`, k);
      assert.equal(replay.status, 402);
      assert.equal(replay.text, 'card declined');
      assert.equal(replay.headers['idempotent-replayed'], 'true');
      assert.equal(refusals, 1);
      const other = randomUUID(); // a key per route: the same key on /fail would be a 422
      assert.equal((await post(`${server.url}/fail`, other)).status, 500);
      assert.equal((await post(`${server.url}/fail`, other)).status, 500);
      assert.equal(failures, 2, 'a thrown error is not stored, even with the stripe preset');
    } finally {
      await server.close();
      await store.close();
    }
  });

  it('sends the first chunk of a streamed body before the handler has written the rest', {
    timeout: 10_000,
  }, async () => {
    const store = new MemoryStore();
    const app = new Hono();
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    app.post('/stream', idempotency({ store }), () => {
      const encoder = new TextEncoder();
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(encoder.encode('first\n'));
          await held;
          controller.enqueue(encoder.encode('second\n'));
          controller.close();
        },
      });
      return new Response(body, { headers: { 'content-type': 'text/plain' } });
    });
    const server = await serve(app);
    try {
      const k = randomUUID();
      const text = await new Promise<string>((resolve, reject) => {
        const req = request(
          `${server.url}/stream`,
          { method: 'POST', headers: { ...CALLER, 'idempotency-key': k }, agent: false },
          (res) => {
            let received = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              received += chunk;
              // The handler holds the rest back until the client has the first chunk.
              if (received === 'first\n') release();
            });
            res.on('end', () => resolve(received));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end();
      });
      assert.equal(text, 'first\nsecond\n');
      const replay = await send(`${server.url}/stream`, { headers: { ...CALLER, 'idempotency-key': k } });
      assert.equal(replay.text, 'first\nsecond\n');
      assert.equal(replay.headers['idempotent-replayed'], 'true');
    } finally {
      release();
      await server.close();
      await store.close();
    }
  });

  it('runs on the Fetch API alone: app.request() replays without any Node server', async () => {
    const store = new MemoryStore();
    const app = new Hono();
    let runs = 0;
    app.post('/charges', idempotency({ store }), async (c) => c.json({ run: ++runs, ...(await c.req.json()) }, 201));
    const init = () => ({
      method: 'POST',
      headers: { ...CALLER, 'idempotency-key': '"fetch-only"', 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 700 }),
    });
    try {
      const first = await app.request('/charges', init());
      assert.equal(first.status, 201);
      assert.deepEqual(await first.json(), { run: 1, amount: 700 });
      const again = await app.request('/charges', init());
      assert.equal(again.status, 201);
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      assert.deepEqual(await again.json(), { run: 1, amount: 700 });
      assert.equal(runs, 1);
    } finally {
      await store.close();
    }
  });
});
