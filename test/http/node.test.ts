import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { Agent, createServer, type IncomingMessage, request } from 'node:http';
import { after, describe, it } from 'node:test';
import {
  type BufferedRequest,
  type NodeIdempotencyOptions,
  withIdempotency,
} from '../../src/adapters/node-http/index.js';
import type { AdminStore, Store } from '../../src/core/store.js';
import type { HttpIdempotencyOptions } from '../../src/http/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import {
  ConformanceApp,
  type RunningServer,
  runHttpConformance,
  send,
  writeNeutralResponse,
} from '../../src/testing/index.js';
import { createStore as postgresStore } from '../stores/postgres.factory.js';
import { CALLER, listen } from './serve.js';

/**
 * Reads the body the way a plain node:http handler does, from the request stream. When the
 * wrapper read the body first, the stream it hands over must yield the very bytes of `rawBody`.
 */
async function streamedBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  const body = Buffer.concat(chunks);
  const { rawBody } = req as Partial<BufferedRequest>;
  if (rawBody !== undefined && !rawBody.equals(body)) {
    throw new Error(`the replayable stream yielded ${body.length} bytes, rawBody holds ${rawBody.length}`);
  }
  return body;
}

function jsonOf(req: IncomingMessage, body: Buffer): unknown {
  if (body.length === 0 || !/\bjson\b/i.test(req.headers['content-type'] ?? '')) return undefined;
  return JSON.parse(body.toString('utf8'));
}

/** Serves every conformance route with a plain node:http handler wrapped by `withIdempotency`. */
/** What handlers threw, as onError saw it; the conformance suite's /throw route lands here. */
const thrown: unknown[] = [];

async function startNode(options: HttpIdempotencyOptions, app: ConformanceApp): Promise<RunningServer> {
  const handler = withIdempotency(
    async function conformanceRoutes(req, res) {
      const path = (req.url ?? '/').split('?')[0];
      const route = ConformanceApp.routes.find((r) => r.method === req.method && r.path === path);
      const body = await streamedBody(req);
      if (route === undefined) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no route"}');
        return;
      }
      await writeNeutralResponse(res, await app.handle(route.op, jsonOf(req, body)));
    },
    { ...options, onError: (error) => thrown.push(error) },
  );
  // Wired as the README says: the wrapper never rejects, a thrown handler becomes a 500 and onError.
  return listen(createServer(handler));
}

runHttpConformance({ name: 'node:http on memory', start: startNode });
runHttpConformance({
  name: 'node:http on postgres',
  start: startNode,
  createStore: () => postgresStore('http_conformance'),
});

interface Echo {
  fromStream: string;
  fromRawBody: string | null;
  bytes: number;
}

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A node:http server whose handler answers with hashes of the body it read from the stream and from rawBody. */
async function startEcho(store: Store, options: Partial<NodeIdempotencyOptions> = {}) {
  let runs = 0;
  const handler = withIdempotency(
    async function echo(req, res) {
      runs += 1;
      const chunks: Buffer[] = [];
      for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
      const body = Buffer.concat(chunks);
      const echo: Echo = {
        fromStream: sha(body),
        fromRawBody: req.rawBody === undefined ? null : sha(req.rawBody),
        bytes: body.length,
      };
      res
        .writeHead(201, { 'content-type': 'application/json', 'x-client-port': String(req.socket.remotePort) })
        .end(JSON.stringify(echo));
    },
    { store, ...options },
  );
  const server = await listen(createServer(handler));
  return { ...server, runs: () => runs };
}

async function countRecords(store: AdminStore): Promise<number> {
  let count = 0;
  let cursor: string | undefined;
  do {
    const page = await store.list({ cursor, limit: 500 });
    count += page.records.length;
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return count;
}

/** Sends a body with Transfer-Encoding: chunked (no Content-Length), in pieces of `piece` bytes. */
function sendChunked(url: string, headers: Record<string, string>, body: Buffer, piece: number) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request(url, { method: 'POST', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    for (let at = 0; at < body.length; at += piece) req.write(body.subarray(at, at + piece));
    req.end();
  });
}

describe('node:http adapter', () => {
  const stores: Store[] = [];
  after(async () => {
    for (const store of stores) await store.close();
  });
  const memory = () => {
    const store = new MemoryStore();
    stores.push(store);
    return store;
  };

  it('hands the handler a readable stream with the very bytes it fingerprinted, and the same bytes as rawBody', async () => {
    const server = await startEcho(memory());
    try {
      const body = Buffer.alloc(300_000);
      for (let i = 0; i < body.length; i++) body[i] = (i * 7919) % 256;
      const key = randomUUID();
      const headers = { ...CALLER, 'idempotency-key': key, 'content-type': 'application/octet-stream' };
      const first = await send(`${server.url}/upload`, { headers, body });
      assert.equal(first.status, 201);
      const echo = first.json as Echo;
      assert.equal(echo.bytes, body.length);
      assert.equal(echo.fromStream, sha(body));
      assert.equal(echo.fromRawBody, sha(body));
      const again = await send(`${server.url}/upload`, { headers, body });
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.deepEqual(again.json, echo);
      assert.equal(server.runs(), 1);
    } finally {
      await server.close();
    }
  });

  it('reads a chunked body the same way, whatever the chunking', async () => {
    const server = await startEcho(memory());
    try {
      const body = Buffer.from(JSON.stringify({ amount: 500, note: 'n'.repeat(20_000) }));
      const key = randomUUID();
      const headers = { ...CALLER, 'idempotency-key': key, 'content-type': 'application/json' };
      const first = await sendChunked(`${server.url}/charges`, headers, body, 1000);
      assert.equal(first.status, 201);
      assert.deepEqual(JSON.parse(first.text), { fromStream: sha(body), fromRawBody: sha(body), bytes: body.length });
      const again = await sendChunked(`${server.url}/charges`, headers, body, 37);
      assert.equal(again.text, first.text, 'the same bytes in other chunks are the same request');
      assert.equal(server.runs(), 1);
    } finally {
      await server.close();
    }
  });

  it('keeps a keep-alive connection open after the handler read the body stream to its end', async () => {
    const server = await startEcho(memory());
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const ports = new Set<string>();
      for (let i = 0; i < 3; i++) {
        const response = await new Promise<{ status: number; port: string }>((resolve, reject) => {
          const body = Buffer.from(`{"n":${i}}`);
          const headers = {
            ...CALLER,
            'idempotency-key': randomUUID(),
            'content-type': 'application/json',
            'content-length': String(body.length),
          };
          const req = request(`${server.url}/charges`, { method: 'POST', headers, agent }, (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, port: String(res.headers['x-client-port']) }));
          });
          req.on('error', reject);
          req.end(body);
        });
        assert.equal(response.status, 201);
        ports.add(response.port);
      }
      assert.equal(ports.size, 1, 'all three requests went over one connection');
      assert.equal(server.runs(), 3);
    } finally {
      agent.destroy();
      await server.close();
    }
  });

  it('passes a request without a key to the handler untouched, its body still unread', async () => {
    const server = await startEcho(memory());
    try {
      const body = Buffer.from('{"amount":1}');
      const response = await send(`${server.url}/charges`, { body, headers: { 'content-type': 'application/json' } });
      assert.deepEqual(response.json, { fromStream: sha(body), fromRawBody: null, bytes: body.length });
    } finally {
      await server.close();
    }
  });

  it('refuses a chunked body over maxBodyBytes with 413, runs nothing and stores nothing', async () => {
    const store = memory();
    const server = await startEcho(store, { maxBodyBytes: 10_000 });
    try {
      const response = await sendChunked(
        `${server.url}/charges`,
        { ...CALLER, 'idempotency-key': randomUUID(), 'content-type': 'application/octet-stream' },
        Buffer.alloc(50_000, 1),
        4096,
      );
      assert.equal(response.status, 413);
      assert.equal((JSON.parse(response.text) as { code: string }).code, 'REQUEST_TOO_LARGE');
      assert.equal(server.runs(), 0);
      assert.equal(await countRecords(store), 0);
    } finally {
      await server.close();
    }
  });

  it('scopes keys by the route option: another target under the same route is a 422, not a second run', async () => {
    const store = memory();
    const server = await startEcho(store, {
      route: (req) => (req.url?.startsWith('/charges/') ? '/charges/:id' : '/'),
    });
    try {
      const key = randomUUID();
      const body = { amount: 5 };
      assert.equal(
        (await send(`${server.url}/charges/1`, { headers: { ...CALLER, 'idempotency-key': key }, body })).status,
        201,
      );
      const other = await send(`${server.url}/charges/2`, { headers: { ...CALLER, 'idempotency-key': key }, body });
      assert.equal(other.status, 422, '/charges/1 and /charges/2 share the scope of /charges/:id');
      const again = await send(`${server.url}/charges/1`, { headers: { ...CALLER, 'idempotency-key': key }, body });
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(server.runs(), 1);
      assert.equal(await countRecords(store), 1);
    } finally {
      await server.close();
    }
  });
});

describe('withIdempotency and a failing handler', () => {
  it('answers 500, releases the key, reports the error to onError and keeps serving', async () => {
    const store = new MemoryStore();
    const seen: unknown[] = [];
    let calls = 0;
    const handler = withIdempotency(
      async (_req, res) => {
        calls += 1;
        if (calls === 1) throw new Error('boom');
        res.writeHead(201).end('ok');
      },
      { store, onError: (error) => seen.push(error) },
    );
    const server = await listen(createServer(handler));
    try {
      const first = await send(`${server.url}/x`, { headers: { ...CALLER, 'idempotency-key': 'k' }, body: { a: 1 } });
      assert.equal(first.status, 500);
      assert.match(String(seen[0]), /boom/);
      const retry = await send(`${server.url}/x`, { headers: { ...CALLER, 'idempotency-key': 'k' }, body: { a: 1 } });
      assert.equal(retry.status, 201, 'the key was released, so the retry ran');
      assert.equal(calls, 2);
    } finally {
      await server.close();
    }
  });
});
