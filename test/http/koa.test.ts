import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, request } from 'node:http';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Koa, { type Context, type Next } from 'koa';
import { idempotency, type KoaIdempotencyOptions } from '../../src/adapters/koa/index.js';
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

type Middleware = (ctx: Context, next: Next) => unknown;

/** The part of @koa/router these tests need: match method and path (`:name` segments), set `_matchedRoute`, run a stack. */
function route(method: string, path: string, ...stack: Middleware[]): Middleware {
  const pattern = new RegExp(`^${path.replace(/:[^/]+/g, '[^/]+')}$`);
  return async function route(ctx, next) {
    if (ctx.method !== method || !pattern.test(ctx.path)) return next();
    (ctx as Context & { _matchedRoute: string })._matchedRoute = path;
    const run = async (i: number): Promise<void> => {
      await stack[i]?.(ctx, () => run(i + 1));
    };
    await run(0);
  };
}

const bodyOf = (ctx: Context) => (ctx.request as Context['request'] & { body?: unknown }).body;

function reply(ctx: Context, response: NeutralResponse): void {
  ctx.status = response.status;
  ctx.set(response.headers);
  if (response.stream) ctx.body = Readable.from(response.stream);
  else if (response.body instanceof Uint8Array) ctx.body = Buffer.from(response.body);
  else ctx.body = response.body;
}

function serve(...middleware: Middleware[]): Promise<RunningServer> {
  const koa = new Koa();
  // Thrown handlers are part of the tests: keep Koa from logging them.
  koa.silent = true;
  for (const layer of middleware) koa.use(layer);
  return listen(createServer(koa.callback()));
}

async function start(options: HttpIdempotencyOptions, app: ConformanceApp): Promise<RunningServer> {
  const protect = idempotency(options);
  return serve(
    ...ConformanceApp.routes.map(({ method, path, op }) =>
      route(method, path, protect, async (ctx: Context) => reply(ctx, await app.handle(op, bodyOf(ctx)))),
    ),
  );
}

runHttpConformance({ name: 'koa on memory', start });
runHttpConformance({ name: 'koa on redis', start, createStore: () => redisStore('http_conformance') });

describe('koa adapter', () => {
  /** A handler that counts its runs and answers 201 with the run number and the body it saw. */
  function counting() {
    const runs = new Map<string, number>();
    const handler = (name: string) => async (ctx: Context) => {
      const n = (runs.get(name) ?? 0) + 1;
      runs.set(name, n);
      ctx.status = 201;
      ctx.body = { name, run: n, body: bodyOf(ctx) ?? null };
    };
    return { runs, handler };
  }

  const post = (url: string, path: string, key?: string, body: unknown = { amount: 1 }) =>
    send(`${url}${path}`, { body, headers: { ...CALLER, ...(key === undefined ? {} : { 'idempotency-key': key }) } });

  const withServer = async (middleware: Middleware[], body: (url: string) => Promise<void>) => {
    const running = await serve(...middleware);
    try {
      await body(running.url);
    } finally {
      await running.close();
    }
  };

  it('protects only the routes it is mounted on, each with its own options', async () => {
    const store = new MemoryStore();
    const { runs, handler } = counting();
    const options: KoaIdempotencyOptions = { store };
    await withServer(
      [
        route('POST', '/refunds', idempotency({ ...options, required: true }), handler('refunds')),
        route('POST', '/charges', idempotency(options), handler('charges')),
        route('POST', '/webhooks', handler('webhooks')),
      ],
      async (url) => {
        const refused = await post(url, '/refunds');
        assert.equal(refused.status, 400);
        assert.equal((refused.json as { code: string }).code, 'KEY_MISSING');
        assert.equal(runs.get('refunds'), undefined);
        assert.equal((await post(url, '/charges')).status, 201, 'keys stay optional on /charges');

        // A key per route: one key on two routes is a 422, as the routes share one store and scope.
        for (const path of ['/refunds', '/charges', '/webhooks']) {
          const k = randomUUID();
          await post(url, path, k);
          await post(url, path, k);
        }
        assert.equal(runs.get('refunds'), 1);
        assert.equal(runs.get('charges'), 2, 'one key-less run, then one protected run');
        assert.equal(runs.get('webhooks'), 2, 'a route without the middleware is not protected');
      },
    );
  });

  it('reads the body itself and leaves it on ctx.request.body, parsed when JSON, with rawBody', async () => {
    let seen: { body: unknown; rawBody: unknown } | undefined;
    await withServer(
      [
        route('POST', '/notes', idempotency({ store: new MemoryStore() }), (ctx: Context) => {
          const request = ctx.request as Context['request'] & { body?: unknown; rawBody?: Buffer };
          seen = { body: request.body, rawBody: request.rawBody?.toString() };
          ctx.body = 'ok';
        }),
      ],
      async (url) => {
        await post(url, '/notes', randomUUID(), { text: 'hi' });
        assert.deepEqual(seen, { body: { text: 'hi' }, rawBody: '{"text":"hi"}' });
        await send(`${url}/notes`, {
          body: 'plain words',
          headers: { ...CALLER, 'idempotency-key': randomUUID(), 'content-type': 'text/plain' },
        });
        assert.ok(Buffer.isBuffer(seen?.body), 'a body that is not JSON stays bytes');
        assert.equal(seen?.rawBody, 'plain words');
      },
    );
  });

  it('uses a body a parser mounted before it already read', async () => {
    const { runs, handler } = counting();
    const parser = async (ctx: Context, next: Next) => {
      const chunks: Buffer[] = [];
      for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
      (ctx.request as Context['request'] & { body?: unknown }).body = {
        parsed: JSON.parse(Buffer.concat(chunks).toString()),
      };
      await next();
    };
    await withServer(
      [parser, route('POST', '/charges', idempotency({ store: new MemoryStore() }), handler('charges'))],
      async (url) => {
        const k = randomUUID();
        const first = await post(url, '/charges', k, { amount: 5 });
        assert.deepEqual((first.json as { body: unknown }).body, { parsed: { amount: 5 } });
        assert.equal((await post(url, '/charges', k, { amount: 5 })).headers['idempotent-replayed'], 'true');
        assert.equal((await post(url, '/charges', k, { amount: 6 })).status, 422, 'the parsed body is fingerprinted');
        assert.equal(runs.get('charges'), 1);
      },
    );
  });

  it('refuses a chunked body over maxBodyBytes with 413 while reading it', async () => {
    const { runs, handler } = counting();
    await withServer(
      [route('POST', '/charges', idempotency({ store: new MemoryStore(), maxBodyBytes: 1000 }), handler('charges'))],
      async (url) => {
        const status = await new Promise<number>((resolve, reject) => {
          const req = request(
            `${url}/charges`,
            {
              method: 'POST',
              agent: false,
              headers: {
                ...CALLER,
                'idempotency-key': randomUUID(),
                'content-type': 'application/json',
                'transfer-encoding': 'chunked',
              },
            },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          );
          req.on('error', reject);
          req.write(`{"pad":"${'x'.repeat(3000)}`);
          req.end('"}');
        });
        assert.equal(status, 413);
        assert.equal(runs.get('charges'), undefined);
      },
    );
  });

  it('stores the full body of a handler that finishes after its client gave up', async () => {
    const app = new ConformanceApp();
    const running = await start({ store: new MemoryStore(), leaseMs: 10_000 }, app);
    try {
      const k = randomUUID();
      await assert.rejects(
        send(`${running.url}/slow`, {
          body: { ms: 200 },
          headers: { ...CALLER, 'idempotency-key': k },
          abortAfterMs: 30,
        }),
      );
      await sleep(350);
      const retry = await send(`${running.url}/slow`, {
        body: { ms: 200 },
        headers: { ...CALLER, 'idempotency-key': k },
      });
      assert.equal(retry.headers['idempotent-replayed'], 'true');
      assert.deepEqual(retry.json, { id: 'sl_1' });
    } finally {
      await running.close();
    }
  });

  it('stores the answer Koa gives a thrown 402 and replays it', async () => {
    let runs = 0;
    await withServer(
      [
        route('POST', '/accounts', idempotency({ store: new MemoryStore() }), (ctx: Context) => {
          runs += 1;
          ctx.throw(402, 'card declined');
        }),
      ],
      async (url) => {
        const k = randomUUID();
        const first = await post(url, '/accounts', k);
        assert.equal(first.status, 402);
        assert.equal(first.text, 'card declined');
        await sleep(20);
        const again = await post(url, '/accounts', k);
        assert.equal(again.status, 402);
        assert.equal(again.text, 'card declined');
        assert.equal(again.headers['idempotent-replayed'], 'true');
        assert.equal(runs, 1);
      },
    );
  });

  it('releases the key for a thrown error even with the stripe preset', async () => {
    let runs = 0;
    await withServer(
      [
        route('POST', '/charges', idempotency({ store: new MemoryStore(), policy: 'stripe' }), () => {
          runs += 1;
          throw new Error('database down');
        }),
      ],
      async (url) => {
        const k = randomUUID();
        assert.equal((await post(url, '/charges', k)).status, 500);
        assert.equal((await post(url, '/charges', k)).status, 500);
        assert.equal(runs, 2);
      },
    );
  });

  it('replays the status message Koa sends for a handler that set no body', async () => {
    let runs = 0;
    await withServer(
      [
        route('POST', '/jobs', idempotency({ store: new MemoryStore() }), (ctx: Context) => {
          runs += 1;
          ctx.status = 202;
        }),
      ],
      async (url) => {
        const k = randomUUID();
        const first = await post(url, '/jobs', k);
        assert.equal(first.text, 'Accepted');
        const again = await post(url, '/jobs', k);
        assert.equal(again.status, 202);
        assert.equal(again.headers['idempotent-replayed'], 'true');
        assert.equal(again.text, first.text);
        assert.equal(again.headers['content-type'], first.headers['content-type']);
        assert.equal(runs, 1);
      },
    );
  });
});
