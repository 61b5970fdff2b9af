/**
 * The server side of the HTTP benchmark, run in its own process by bench/http.ts so the load
 * generator does not share its event loop: Express 5, one JSON POST handler, behind the
 * idempotency middleware the variant names. Prints nothing; tells its parent the port over IPC.
 *
 * Usage: node --import tsx bench/http-server.ts '<ServerConfig as JSON>'
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { Store } from '../src/core/store.js';
import type { ServerConfig, ServerReady } from './http-variants.js';

interface Setup {
  middleware: RequestHandler[];
  /** True when the library already answered this request (a replay) and the handler must not run. */
  answered: (req: Request) => boolean;
  close: () => Promise<void>;
}

async function setup(config: ServerConfig): Promise<Setup> {
  const none = () => false;
  const idem = async (store: Store, replayCacheMs = 0): Promise<Setup> => {
    const { idempotency } = await import('../src/adapters/express/index.js');
    const middleware = idempotency({ store, replayCacheMs }) as RequestHandler;
    return { middleware: [middleware], answered: none, close: () => store.close() };
  };
  const cached = 60_000;
  switch (config.variant) {
    case 'bare':
      return { middleware: [], answered: none, close: async () => {} };
    case 'idem-memory': {
      const { MemoryStore } = await import('../src/stores/memory/index.js');
      // The default cap (100,000 records) is below what a few seconds of new keys can reach.
      return idem(new MemoryStore({ maxRecords: 50_000_000 }));
    }
    case 'idem-sqlite':
    case 'idem-sqlite-cached': {
      const { SqliteStore } = await import('../src/stores/sqlite/index.js');
      const store = new SqliteStore({ path: config.sqlitePath, table: 'idem_bench_http' });
      return idem(store, config.variant === 'idem-sqlite' ? 0 : cached);
    }
    case 'idem-redis':
    case 'idem-redis-cached': {
      const { RedisStore } = await import('../src/stores/redis/index.js');
      const store = new RedisStore({ url: config.redisUrl, prefix: config.redisPrefix });
      return idem(store, config.variant === 'idem-redis' ? 0 : cached);
    }
    case 'idem-postgres':
    case 'idem-postgres-cached': {
      const { PostgresStore } = await import('../src/stores/postgres/index.js');
      const store = new PostgresStore({ url: config.postgresUrl, table: config.postgresTable });
      return idem(store, config.variant === 'idem-postgres' ? 0 : cached);
    }
    case 'express-idempotency': {
      // Its default data adapter (in memory); replays call next() and the handler asks isHit().
      const library = await import('express-idempotency');
      const middleware = library.idempotency() as unknown as RequestHandler;
      const service = library.getSharedIdempotencyService();
      return {
        middleware: [middleware],
        answered: (req) => service.isHit(req as Parameters<typeof service.isHit>[0]),
        close: async () => {},
      };
    }
    case 'node-idempotency-memory': {
      const { MemoryStorage, nodeIdempotencyGlue } = await import('./node-idempotency-glue.js');
      return { middleware: [nodeIdempotencyGlue(new MemoryStorage())], answered: none, close: async () => {} };
    }
    case 'node-idempotency-redis': {
      const { RedisStorage, nodeIdempotencyGlue } = await import('./node-idempotency-glue.js');
      const { Redis } = await import('ioredis');
      const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1 });
      return {
        middleware: [nodeIdempotencyGlue(new RedisStorage(redis, `${config.redisPrefix}nodeidem:`))],
        answered: none,
        close: async () => void (await redis.quit()),
      };
    }
    case 'minimal-memory': {
      const { MinimalMemoryStore, minimalMiddleware } = await import('./minimal-middleware.js');
      return { middleware: [minimalMiddleware(new MinimalMemoryStore())], answered: none, close: async () => {} };
    }
    case 'minimal-redis': {
      const { MinimalRedisStore, minimalMiddleware } = await import('./minimal-middleware.js');
      const { Redis } = await import('ioredis');
      const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1 });
      return {
        middleware: [minimalMiddleware(new MinimalRedisStore(redis, `${config.redisPrefix}minimal:`))],
        answered: none,
        close: async () => void (await redis.quit()),
      };
    }
  }
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as ServerConfig;
  const { middleware, answered, close } = await setup(config);
  let runs = 0;
  const app = express();
  app.use(express.json());
  app.post('/orders', ...middleware, function createOrder(req: Request, res: Response) {
    if (answered(req)) return;
    runs += 1;
    const body = (req.body ?? {}) as { amount?: unknown; currency?: unknown };
    // `run` counts handler executions: a replay must carry the run of the request it replays.
    res.status(201).json({ id: `ord_${runs}`, amount: body.amount, currency: body.currency, run: runs });
  });
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (!res.headersSent) res.status(res.statusCode >= 400 ? res.statusCode : 500).json({ error: String(error) });
  });
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const stop = async () => {
    server.closeAllConnections();
    server.close();
    await close().catch(() => {});
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('disconnect', () => void stop());
  process.send?.({ port: (server.address() as AddressInfo).port } satisfies ServerReady);
}

await main();
