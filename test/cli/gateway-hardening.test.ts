import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Gateway, type GatewayOptions } from '../../src/cli/gateway/gateway.js';
import type { CompleteInput } from '../../src/core/store.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { send } from '../../src/testing/http-client.js';
import { listen } from '../http/serve.js';
import { newKey } from './helpers.js';
import { RawClient } from './raw-socket.js';

const AUTH = { authorization: 'Bearer hardening' };

/** What the upstream received. */
interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The header lines as they came, names and values in turn. */
  rawHeaders: string[];
}

/**
 * An upstream that records every request it parses. `/slow/<ms>` answers after that long;
 * `/broken` sends its head, then drops the connection before any of its body.
 */
class RecordingUpstream {
  readonly seen: Seen[] = [];
  readonly server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const seen = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      body: Buffer.concat(chunks).toString('latin1'),
      rawHeaders: req.rawHeaders,
    };
    this.seen.push(seen);
    const slow = /^\/[^?]*\/slow\/(\d+)/.exec(seen.url) ?? /^\/slow\/(\d+)/.exec(seen.url);
    if (slow !== null) await sleep(Number(slow[1]));
    if (seen.url.startsWith('/broken')) {
      res.socket?.end('HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n');
      res.socket?.destroy();
      return;
    }
    const text = JSON.stringify({ n: this.seen.length, method: seen.method, url: seen.url });
    res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
  url = '';
  #close: (() => Promise<void>) | undefined;

  count(path: string): number {
    return this.seen.filter((seen) => seen.url.split('?')[0] === path).length;
  }

  async start(): Promise<this> {
    const running = await listen(this.server);
    this.url = running.url;
    this.#close = running.close;
    return this;
  }

  async close(): Promise<void> {
    await this.#close?.();
  }
}

async function startGateway(upstream: string, options: Partial<GatewayOptions> = {}) {
  const gateway = new Gateway({ upstream, store: new MemoryStore(), graceMs: 200, ...options });
  const url = await gateway.listen(0);
  return { gateway, url, close: () => gateway.close() };
}

describe('the gateway as a hardened reverse proxy', () => {
  const upstream = new RecordingUpstream();
  let gateway: Awaited<ReturnType<typeof startGateway>>;

  before(async () => {
    await upstream.start();
    gateway = await startGateway(upstream.url, { maxBodyBytes: 1024 });
  });
  after(async () => {
    await gateway.close();
    await upstream.close();
  });

  for (const method of ['GET', 'DELETE', 'OPTIONS', 'HEAD']) {
    it(`forwards the chunked body of a ${method} framed, so it cannot smuggle a second request past the gateway`, async () => {
      const smuggled = 'POST /smuggled HTTP/1.1\r\nHost: upstream\r\nContent-Length: 0\r\n\r\n';
      const client = await RawClient.open(gateway.url);
      client.write(
        `${method} /carrier-${method} HTTP/1.1\r\nHost: gateway\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
          `${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`,
      );
      await client.untilClosed();
      await sleep(100);
      assert.equal(upstream.count('/smuggled'), 0, 'no second request reached the upstream');
      const carrier = upstream.seen.filter((seen) => seen.url === `/carrier-${method}`);
      assert.equal(carrier.length, 1);
      assert.equal(carrier[0]?.method, method);
      assert.equal(carrier[0]?.body, smuggled, 'the body went to the upstream as the body');
      assert.equal(carrier[0]?.headers['transfer-encoding'], 'chunked');
    });
  }

  it('forwards a Content-Length body of a GET with its length', async () => {
    const client = await RawClient.open(gateway.url);
    client.write(
      'GET /carrier-length HTTP/1.1\r\nHost: gateway\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello',
    );
    await client.untilClosed();
    const carrier = upstream.seen.find((seen) => seen.url === '/carrier-length');
    assert.equal(carrier?.body, 'hello');
    assert.equal(carrier?.headers['content-length'], '5');
  });

  it('forwards repeated headers in order, Cookie lines as one, and drops the headers Connection names', async () => {
    const client = await RawClient.open(gateway.url);
    client.write(
      'GET /carrier-lines HTTP/1.1\r\nHost: gateway\r\nCookie: a=1\r\nX-Tag: one\r\nCookie: b=2\r\nX-Tag: two\r\n' +
        'X-Hop: private\r\nConnection: close, X-Hop\r\n\r\n',
    );
    await client.untilClosed();
    const carrier = upstream.seen.find((seen) => seen.url === '/carrier-lines');
    const lines = (name: string) => {
      const raw = carrier?.rawHeaders ?? [];
      return raw.filter((_, i) => i % 2 === 1 && raw[i - 1]?.toLowerCase() === name);
    };
    assert.deepEqual(lines('cookie'), ['a=1; b=2']);
    assert.deepEqual(lines('x-tag'), ['one', 'two']);
    assert.deepEqual(lines('x-hop'), []);
    assert.deepEqual(lines('x-forwarded-host'), ['gateway']);
  });

  it('answers 400 problem+json to Transfer-Encoding with Content-Length, forwards nothing, and keeps serving', async () => {
    const before = upstream.seen.length;
    const client = await RawClient.open(gateway.url);
    client.write(
      'POST /both HTTP/1.1\r\nHost: gateway\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\nhello',
    );
    await client.untilClosed();
    const [answer] = client.responses();
    assert.equal(answer?.status, 400, client.text);
    assert.equal(answer?.headers['content-type'], 'application/problem+json');
    assert.equal((JSON.parse(answer?.body ?? '{}') as { code: string }).code, 'REQUEST_INVALID');
    assert.equal(upstream.seen.length, before);
    assert.equal((await send(`${gateway.url}/after`, { headers: AUTH, body: {} })).status, 201, 'still serving');
  });

  it('refuses a Transfer-Encoding other than chunked with 400', async () => {
    const client = await RawClient.open(gateway.url);
    client.write('POST /gzip HTTP/1.1\r\nHost: gateway\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n');
    await client.untilResponses(1);
    assert.equal(client.responses()[0]?.status, 400);
    assert.equal(upstream.count('/gzip'), 0);
    client.close();
  });

  it('sets X-Forwarded-For, -Host and -Proto itself, never passing on the values the client sent', async () => {
    const answer = await send(`${gateway.url}/forwarded`, {
      headers: {
        'x-forwarded-for': '6.6.6.6',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-proto': 'https',
        forwarded: 'for=6.6.6.6;host=evil.example',
        'x-real-ip': '6.6.6.6',
      },
      body: {},
    });
    assert.equal(answer.status, 201);
    const seen = upstream.seen.find((entry) => entry.url === '/forwarded');
    assert.equal(seen?.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen?.headers['x-forwarded-host'], new URL(gateway.url).host);
    assert.equal(seen?.headers['x-forwarded-proto'], 'http');
    assert.equal(seen?.headers.forwarded, undefined);
    assert.equal(seen?.headers['x-real-ip'], undefined);
  });

  it('refuses a protected body over the limit after at most a little more than the limit, and closes the connection', async () => {
    const client = await RawClient.open(gateway.url);
    client.write(
      `POST /big HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer x\r\nIdempotency-Key: ${newKey()}\r\nContent-Length: 10000000\r\n\r\n`,
    );
    client.write(Buffer.alloc(200 * 1024, 'x'));
    await client.untilClosed(); // the old gateway read on, waiting for all 10 MB
    assert.equal(client.responses()[0]?.status, 413);
    assert.equal(upstream.count('/big'), 0);
  });

  it('refuses a chunked protected body over the limit without reading it to the end', async () => {
    const client = await RawClient.open(gateway.url);
    client.write(
      `POST /big-chunked HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer x\r\nIdempotency-Key: ${newKey()}\r\nTransfer-Encoding: chunked\r\n\r\n`,
    );
    for (let i = 0; i < 50; i++) client.write(`1000\r\n${'y'.repeat(0x1000)}\r\n`);
    await client.untilClosed();
    assert.equal(client.responses()[0]?.status, 413);
    assert.equal(upstream.count('/big-chunked'), 0);
  });

  it('answers 413 to a body a little over the limit and keeps the connection for the next request', async () => {
    const client = await RawClient.open(gateway.url);
    const body = 'z'.repeat(2048);
    client.write(
      `POST /over HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer x\r\nIdempotency-Key: ${newKey()}\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    await client.untilResponses(1);
    client.write('POST /next HTTP/1.1\r\nHost: gateway\r\nContent-Length: 2\r\n\r\n{}');
    await client.untilResponses(2);
    assert.deepEqual(
      client.responses().map((response) => response.status),
      [413, 201],
    );
    client.close();
  });

  it('keeps the base path a boundary: dot-segments, raw or encoded, are refused with 400 and never forwarded', async () => {
    const based = await startGateway(`${upstream.url}/api`);
    try {
      const before = upstream.seen.length;
      const targets = [
        '/../admin',
        '/%2e%2e/admin',
        '/%2E./admin',
        '/.%2e/admin',
        '/..%2fadmin',
        '/..%2Fadmin',
        '/..\\admin',
        '/..%5cadmin',
        '/%252e%252e/admin',
        '/a/..;/admin',
        '/charges/../../admin',
        '/./charges',
      ];
      for (const target of targets) {
        const client = await RawClient.open(based.url);
        client.write(`GET ${target} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n`);
        await client.untilClosed();
        const [answer] = client.responses();
        assert.equal(answer?.status, 400, `${target}: ${client.text}`);
        assert.equal((JSON.parse(answer?.body ?? '{}') as { code: string }).code, 'REQUEST_INVALID');
      }
      assert.equal(upstream.seen.length, before, 'nothing was forwarded');
      const client = await RawClient.open(based.url);
      client.write('GET /files/a%2Fb..c/x.y?q=../z HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n');
      await client.untilClosed();
      assert.equal(client.responses()[0]?.status, 201);
      assert.equal(
        upstream.seen.at(-1)?.url,
        '/api/files/a%2Fb..c/x.y?q=../z',
        'a path without dot-segments goes as sent',
      );
    } finally {
      await based.close();
    }
  });
});

describe('the gateway with slow clients', () => {
  const upstream = new RecordingUpstream();
  before(() => upstream.start());
  after(() => upstream.close());

  it('answers 408 and closes a connection whose request head does not come in time', async () => {
    const gateway = await startGateway(upstream.url, { headersTimeoutMs: 300, requestTimeoutMs: 600 });
    try {
      const client = await RawClient.open(gateway.url);
      client.write('POST /slow-head HTTP/1.1\r\nHost: gateway\r\n');
      await client.untilClosed();
      const [answer] = client.responses();
      assert.equal(answer?.status, 408, client.text);
      assert.equal((JSON.parse(answer?.body ?? '{}') as { code: string }).code, 'REQUEST_TIMEOUT');
    } finally {
      await gateway.close();
    }
  });

  it('closes a connection whose protected body does not come in time, and never claims its key', async () => {
    const store = new MemoryStore();
    const gateway = await startGateway(upstream.url, { store, headersTimeoutMs: 300, requestTimeoutMs: 600 });
    try {
      const client = await RawClient.open(gateway.url);
      client.write(
        `POST /slow-body HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer x\r\nIdempotency-Key: ${newKey()}\r\nContent-Length: 100\r\n\r\n{"a":`,
      );
      await client.untilClosed();
      assert.equal(client.responses()[0]?.status, 408);
      assert.equal(upstream.count('/slow-body'), 0);
      assert.equal((await store.list()).records.length, 0);
    } finally {
      await gateway.close();
    }
  });

  it('closes connections past --max-connections as they arrive', async () => {
    const gateway = await startGateway(upstream.url, { maxConnections: 2 });
    try {
      const first = await RawClient.open(gateway.url);
      const second = await RawClient.open(gateway.url);
      first.write('GET /held-1 HTTP/1.1\r\nHost: gateway\r\n\r\n');
      second.write('GET /held-2 HTTP/1.1\r\nHost: gateway\r\n\r\n');
      await Promise.all([first.untilResponses(1), second.untilResponses(1)]);
      const third = await RawClient.open(gateway.url);
      third.write('GET /third HTTP/1.1\r\nHost: gateway\r\n\r\n');
      await third.untilClosed();
      assert.equal(third.text, '', 'the connection over the cap got nothing');
      first.close();
      await sleep(100);
      const fourth = await RawClient.open(gateway.url);
      fourth.write('GET /fourth HTTP/1.1\r\nHost: gateway\r\n\r\n');
      await fourth.untilResponses(1);
      second.close();
      fourth.close();
    } finally {
      await gateway.close();
    }
  });
});

describe('the gateway keeps keys right when the exchange goes wrong', () => {
  const upstream = new RecordingUpstream();
  before(() => upstream.start());
  after(() => upstream.close());

  it('keeps extending the lease for a client that gave up while the upstream still works, so a retry does not run it again', async () => {
    const gateway = await startGateway(upstream.url, { leaseMs: 1000, retentionMs: 60_000 });
    try {
      const key = newKey();
      const post = (abortAfterMs?: number) =>
        send(`${gateway.url}/slow/2500`, {
          body: { amount: 1 },
          headers: { ...AUTH, 'idempotency-key': key },
          ...(abortAfterMs === undefined ? {} : { abortAfterMs }),
        });
      await assert.rejects(post(200), /aborted by the test client/);
      await sleep(1400); // past the lease the client's heartbeat would have kept, had it stopped
      const during = await post();
      assert.equal(during.status, 409, 'the first request still holds its key');
      await sleep(1500);
      const retry = await post();
      assert.equal(retry.status, 201);
      assert.equal(retry.headers['idempotent-replayed'], 'true', 'the response stored for the client that left');
      assert.equal(upstream.count('/slow/2500'), 1, 'the upstream ran once');
    } finally {
      await gateway.close();
    }
  });

  it('answers 502 when the upstream breaks off after its head, before the client got anything, and 410 to retries instead of running it again', async () => {
    const gateway = await startGateway(upstream.url);
    try {
      const key = newKey();
      const post = () => send(`${gateway.url}/broken`, { body: {}, headers: { ...AUTH, 'idempotency-key': key } });
      const first = await post();
      assert.equal(first.status, 502);
      assert.equal((first.json as { code: string }).code, 'UPSTREAM_UNAVAILABLE');
      assert.match(
        (first.json as { detail: string }).detail,
        /answered 201, then the connection broke.*not stored.*410/,
      );
      const retry = await post();
      assert.equal(retry.status, 410);
      const problem = retry.json as { type: string; detail: string };
      assert.equal(problem.type, 'urn:idem:problem:response-not-stored');
      assert.match(problem.detail, /broke off/, 'the retry is told the response broke off');
      assert.doesNotMatch(problem.detail, /bytes|storable limit/, 'not that it was too large');
      assert.equal(upstream.count('/broken'), 1);
    } finally {
      await gateway.close();
    }
  });

  it('on shutdown lets a store write that outlasts the grace period finish, and gives the client its stored answer', async () => {
    const store = new MemoryStore();
    let completing: (() => void) | undefined;
    const completeCalled = new Promise<void>((resolve) => {
      completing = resolve;
    });
    const complete = store.complete.bind(store);
    store.complete = async (input: CompleteInput) => {
      completing?.();
      await sleep(600);
      return complete(input);
    };
    const failures: unknown[] = [];
    const onFailure = (error: unknown) => failures.push(error);
    process.on('uncaughtException', onFailure);
    process.on('unhandledRejection', onFailure);
    try {
      const gateway = await startGateway(upstream.url, { store, graceMs: 100 });
      const key = newKey();
      const answer = send(`${gateway.url}/stored`, { body: {}, headers: { ...AUTH, 'idempotency-key': key } });
      await completeCalled;
      const report = await gateway.close();
      const got = await answer;
      assert.equal(got.status, 201, got.text);
      assert.equal(
        (got.json as { url: string }).url,
        '/stored',
        'the upstream answer, not a 503 that says the key was released',
      );
      assert.deepEqual(report, { finished: 0, cutOff: 1 });
      const [record] = (await store.list()).records;
      assert.equal(record?.state, 'completed');
      await sleep(50);
      assert.deepEqual(failures, [], 'nothing was thrown after the response ended');
    } finally {
      process.off('uncaughtException', onFailure);
      process.off('unhandledRejection', onFailure);
    }
  });

  it('refuses a keyed request without credentials with 400 caller-unknown, and a key reused on another route with 422', async () => {
    const gateway = await startGateway(upstream.url);
    try {
      const key = newKey();
      const anonymous = await send(`${gateway.url}/route-a`, { body: {}, headers: { 'idempotency-key': key } });
      assert.equal(anonymous.status, 400);
      assert.equal((anonymous.json as { type: string }).type, 'urn:idem:problem:caller-unknown');
      assert.equal(upstream.count('/route-a'), 0);
      const first = await send(`${gateway.url}/route-a`, { body: {}, headers: { ...AUTH, 'idempotency-key': key } });
      assert.equal(first.status, 201);
      const other = await send(`${gateway.url}/route-b`, { body: {}, headers: { ...AUTH, 'idempotency-key': key } });
      assert.equal(other.status, 422);
      assert.equal(upstream.count('/route-b'), 0);
    } finally {
      await gateway.close();
    }
  });
});
