/**
 * The server side of the production part's HTTP runs, in its own process (started by
 * `telemetry-http.ts`): the HTTP part's Express 5 JSON handler, once per route, bare at
 * `POST /bare/orders` and behind `idem/express` with each feature variant on each store at
 * `POST /<variant>-<store>/orders`. One process holds them all, so switching variants between
 * interleaved rounds costs no restart; every route goes through the same dispatch.
 *
 * Usage: node --import tsx bench/production-server.ts '<ProductionServerConfig as JSON>'
 */

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { idempotency } from '../src/adapters/express/index.js';
import type { Store } from '../src/core/store.js';
import { MemoryStore } from '../src/stores/memory/index.js';
import { SqliteStore } from '../src/stores/sqlite/index.js';
import type { ServerReady } from './http-variants.js';
import {
  featureOptions,
  type ProductionHttpStore,
  type ProductionServerConfig,
  Recorder,
  routeOf,
  TELEMETRY_VARIANTS,
} from './telemetry-variants.js';

function openStore(name: ProductionHttpStore, variant: string, directory: string): Store {
  // The default cap (100,000 records) is below what the rounds of new keys reach.
  if (name === 'memory') return new MemoryStore({ maxRecords: 10_000_000, maxBytes: 4 * 1024 ** 3 });
  return new SqliteStore({ path: join(directory, `${variant}.db`), table: 'idem_bench_prod_http' });
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as ProductionServerConfig;
  const recorder = new Recorder();
  const chains = new Map<string, RequestHandler | undefined>([[routeOf('bare', undefined), undefined]]);
  const stores: Store[] = [];
  for (const storeName of config.stores) {
    for (const { id } of TELEMETRY_VARIANTS) {
      const features = featureOptions(id, recorder);
      if (features === undefined) continue;
      const store = openStore(storeName, id, config.directory);
      stores.push(store);
      chains.set(routeOf(id, storeName), idempotency({ store, ...features }) as RequestHandler);
    }
  }
  let runs = 0;
  const createOrder = (req: Request, res: Response) => {
    runs += 1;
    const body = (req.body ?? {}) as { amount?: unknown; currency?: unknown };
    // `run` counts handler executions: a replay must carry the run of the request it replays.
    res.status(201).json({ id: `ord_${runs}`, amount: body.amount, currency: body.currency, run: runs });
  };
  const app = express();
  app.use(express.json());
  app.post('/:route/orders', (req: Request, res: Response, next: NextFunction) => {
    const route = req.path;
    if (!chains.has(route)) {
      res.status(404).json({ error: `no route ${route}` });
      return;
    }
    const middleware = chains.get(route);
    if (middleware === undefined) return createOrder(req, res);
    middleware(req, res, (error?: unknown) => (error === undefined ? createOrder(req, res) : next(error)));
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
    for (const store of stores) await store.close().catch(() => {});
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('disconnect', () => void stop());
  process.send?.({ port: (server.address() as AddressInfo).port } satisfies ServerReady);
}

await main();
