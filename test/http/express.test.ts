import { createServer, type ServerResponse } from 'node:http';
import express5 from 'express';
import express4 from 'express4';
import { idempotency } from '../../src/adapters/express/index.js';
import type { HttpIdempotencyOptions } from '../../src/http/index.js';
import { ConformanceApp, runHttpConformance, writeNeutralResponse } from '../../src/testing/index.js';
import { createStore as postgresStore } from '../stores/postgres.factory.js';
import { createStore as redisStore } from '../stores/redis.factory.js';
import { listen } from './serve.js';

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
