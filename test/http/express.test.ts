import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import express5 from 'express';
import express4 from 'express4';
import { idempotency } from '../../src/adapters/express/index.js';
import type { HttpIdempotencyOptions } from '../../src/http/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { ConformanceApp, runHttpConformance, writeNeutralResponse } from '../../src/testing/index.js';
import { createStore as postgresStore } from '../stores/postgres.factory.js';
import { createStore as redisStore } from '../stores/redis.factory.js';
import { CALLER, listen } from './serve.js';

type ExpressModule = typeof express5;

function starter(express: ExpressModule) {
  return async (options: HttpIdempotencyOptions, app: ConformanceApp) => {
    const server = express();
    server.use(express.json());
    const middleware = idempotency(options);
    for (const route of ConformanceApp.routes) {
      const method = route.method.toLowerCase() as 'get' | 'post' | 'put';
      server[method](route.path, middleware, async (req, res, next) => {
        try {
          await writeNeutralResponse(res, await app.handle(route.op, req.body));
        } catch (error) {
          next(error);
        }
      });
    }
    // Quiet the default handler's stack traces: a thrown handler is part of the suite.
    server.use((_error: unknown, _req: unknown, res: ServerResponse, _next: unknown) => {
      res.statusCode = 500;
      res.end('{"error":"internal"}');
    });
    return listen(createServer(server));
  };
}

runHttpConformance({ name: 'express 5 on memory', start: starter(express5) });
runHttpConformance({ name: 'express 4 on memory', start: starter(express4 as unknown as ExpressModule) });
runHttpConformance({
  name: 'express 5 on postgres',
  start: starter(express5),
  createStore: () => postgresStore('http_conformance'),
});
runHttpConformance({
  name: 'express 5 on redis',
  start: starter(express5),
  createStore: () => redisStore('http_conformance'),
});

describe('idem/express and the response objects of an app', () => {
  for (const [name, express] of [
    ['express 5', express5],
    ['express 4', express4 as unknown as ExpressModule],
  ] as const) {
    it(`${name}: records without adding properties to the response, and leaves unprotected routes alone`, async () => {
      const app = express();
      app.use(express.json());
      const owned: string[] = [];
      let runs = 0;
      app.post('/orders', idempotency({ store: new MemoryStore() }), (req, res) => {
        owned.push(...['writeHead', 'write', 'end'].filter((method) => Object.hasOwn(res, method)));
        runs += 1;
        res.status(201).json({ run: runs, amount: (req.body as { amount: number }).amount });
      });
      app.post('/plain', (_req, res) => {
        res.status(200).type('text/plain');
        res.write('streamed ');
        res.end('plainly');
      });
      const server = await listen(createServer(app));
      try {
        const post = (path: string, key?: string) =>
          fetch(`${server.url}${path}`, {
            method: 'POST',
            headers: {
              ...CALLER,
              'content-type': 'application/json',
              ...(key === undefined ? {} : { 'idempotency-key': key }),
            },
            body: '{"amount":5}',
          });
        for (const key of ['k1', 'k2']) {
          const first = await post('/orders', key);
          const again = await post('/orders', key);
          assert.equal(first.status, 201);
          assert.equal(again.status, 201);
          assert.equal(again.headers.get('idempotent-replayed'), 'true');
          assert.equal(await again.text(), await first.text());
        }
        assert.equal(runs, 2);
        assert.deepEqual(owned, [], 'Idem added its own methods to a response that has its app prototype');
        const plain = await post('/plain', 'k1');
        assert.equal(plain.status, 200);
        assert.equal(await plain.text(), 'streamed plainly');
        assert.equal(plain.headers.get('idempotent-replayed'), null);
      } finally {
        await server.close();
      }
    });

    it(`${name}: records a response that a mounted sub-app sends, under its own prototype`, async () => {
      const app = express();
      app.use(express.json());
      app.use(idempotency({ store: new MemoryStore() }));
      const api = express();
      let runs = 0;
      api.post('/orders', (_req, res) => {
        runs += 1;
        res.status(201).json({ run: runs });
      });
      app.use('/api', api);
      const server = await listen(createServer(app));
      try {
        for (const key of ['k1', 'k2']) {
          const init = { method: 'POST', headers: { ...CALLER, 'idempotency-key': key } };
          const first = await fetch(`${server.url}/api/orders`, init);
          const again = await fetch(`${server.url}/api/orders`, init);
          assert.equal(first.status, 201);
          assert.equal(again.headers.get('idempotent-replayed'), 'true');
          assert.deepEqual(await again.json(), await first.json());
        }
        assert.equal(runs, 2);
      } finally {
        await server.close();
      }
    });

    it(`${name}: records what a middleware mounted before it wraps, from the first request on`, async () => {
      const app = express();
      // A middleware that wraps the response's own methods before Idem runs, as compression does.
      app.use((_req, res, next) => {
        const { write, end } = res;
        const shout = (chunk: unknown) =>
          typeof chunk === 'string' || chunk instanceof Uint8Array
            ? Buffer.from(String(Buffer.from(chunk)).toUpperCase())
            : chunk;
        res.write = function shoutWrite(this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
          return (write as (...args: unknown[]) => boolean).call(this, shout(chunk), ...rest);
        } as typeof res.write;
        res.end = function shoutEnd(this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
          return (end as (...args: unknown[]) => ServerResponse).call(this, shout(chunk), ...rest);
        } as typeof res.end;
        next();
      });
      app.use(express.json());
      let runs = 0;
      app.post('/orders', idempotency({ store: new MemoryStore() }), (_req, res) => {
        runs += 1;
        res.status(201).type('text/plain').end(`order ${runs}`);
      });
      const server = await listen(createServer(app));
      try {
        for (const key of ['k1', 'k2', 'k3']) {
          const init = { method: 'POST', headers: { ...CALLER, 'idempotency-key': key } };
          const first = await fetch(`${server.url}/orders`, init);
          const again = await fetch(`${server.url}/orders`, init);
          assert.equal(await first.text(), `ORDER ${runs}`);
          assert.equal(again.headers.get('idempotent-replayed'), 'true');
          assert.equal(await again.text(), `ORDER ${runs}`, 'the replay is what the client got the first time');
        }
        assert.equal(runs, 3);
      } finally {
        await server.close();
      }
    });
  }
});
