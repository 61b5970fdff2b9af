import { rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after } from 'node:test';
import { Gateway } from '../../src/cli/gateway/gateway.js';
import type { HttpIdempotencyOptions } from '../../src/http/index.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { ConformanceApp, runHttpConformance, writeNeutralResponse } from '../../src/testing/index.js';
import { listen } from '../http/serve.js';
import { createStore as postgresStore } from '../stores/postgres.factory.js';
import { createStore as redisStore } from '../stores/redis.factory.js';
import { tempDir } from './helpers.js';

/** The conformance app as a plain upstream that knows nothing of idempotency. */
async function startUpstream(app: ConformanceApp) {
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const route = ConformanceApp.routes.find(
      (r) => r.method === req.method && r.path === (req.url ?? '').split('?')[0],
    );
    if (route === undefined) {
      res.writeHead(404).end();
      return;
    }
    const text = Buffer.concat(chunks).toString('utf8');
    try {
      await writeNeutralResponse(res, await app.handle(route.op, text === '' ? undefined : JSON.parse(text)));
    } catch {
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"internal"}');
    }
  });
  return listen(server);
}

/** The suite talks to the gateway; the conformance app runs behind it as the upstream. */
async function startGateway(options: HttpIdempotencyOptions, app: ConformanceApp) {
  const upstream = await startUpstream(app);
  const gateway = new Gateway({
    ...options,
    upstream: upstream.url,
    graceMs: 100,
  });
  const url = await gateway.listen(0);
  return {
    url,
    close: async () => {
      gateway.server.closeAllConnections();
      await gateway.close();
      await upstream.close();
    },
  };
}

const directory = tempDir();
after(() => rmSync(directory, { recursive: true, force: true }));

runHttpConformance({ name: 'idem serve gateway on memory', start: startGateway });
runHttpConformance({
  name: 'idem serve gateway on sqlite',
  start: startGateway,
  createStore: () => new SqliteStore({ path: join(directory, 'conformance.db') }),
});
runHttpConformance({
  name: 'idem serve gateway on postgres',
  start: startGateway,
  createStore: () => postgresStore('http_conformance'),
});
runHttpConformance({
  name: 'idem serve gateway on redis',
  start: startGateway,
  createStore: () => redisStore('http_conformance'),
});
