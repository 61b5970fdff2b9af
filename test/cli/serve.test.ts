import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { send } from '../../src/testing/http-client.js';
import { dropStore as dropMysql, MYSQL_URL } from '../stores/mysql.factory.js';
import { dropStore as dropPostgres, postgresUrl } from '../stores/postgres.factory.js';
import { dropStore as dropRedis, prefixOf, redisUrl } from '../stores/redis.factory.js';
import { newKey, type RunningIdem, startIdem, TestUpstream, tempDir, untilSettled } from './helpers.js';

const directory = tempDir();
after(() => rmSync(directory, { recursive: true, force: true }));

/** Each store with the table or prefix the store factories drop, so test records do not pile up. */
const stores: [string, string, () => Promise<void>][] = [
  ['sqlite', `sqlite:${join(directory, 'gateway.db')}`, async () => {}],
  ['memory', 'memory:', async () => {}],
  ['postgres', `${postgresUrl}?table=idem_cli_gateway`, () => dropPostgres('cli_gateway')],
  ['redis', `${redisUrl}/?prefix=${prefixOf('cli_gateway')}`, () => dropRedis('cli_gateway')],
  ['mysql', `${MYSQL_URL}?table=idem_records_cli_gateway`, () => dropMysql('cli_gateway')],
];

for (const [name, storeUrl, drop] of stores) {
  describe(`idem serve on ${name}`, () => {
    const upstream = new TestUpstream();
    let gateway: RunningIdem;

    before(async () => {
      await drop();
      await upstream.start();
      gateway = await startIdem(['--upstream', upstream.url, '--store', storeUrl, '--lease', '5s']);
    });
    after(async () => {
      assert.equal(await gateway.stop(), 0, 'the gateway exits 0 on SIGTERM');
      await upstream.close();
      await drop();
    });

    const charge = (key: string | undefined, body: unknown = { amount: 500 }, headers: Record<string, string> = {}) =>
      send(`${gateway.url}/charges`, {
        body,
        headers: {
          authorization: 'Bearer test-client',
          ...(key === undefined ? {} : { 'idempotency-key': key }),
          ...headers,
        },
      });

    it('forwards the first request and replays its 201, body and Location for a repeated key, without Set-Cookie', async () => {
      const key = newKey();
      const first = await charge(key);
      assert.equal(first.status, 201);
      assert.deepEqual(first.headers['set-cookie'], ['a=1', 'b=2'], 'the first answer carries the upstream cookies');
      // A small response comes whole, with its length, once it is stored: not chunked.
      assert.equal(first.headers['content-length'], String(Buffer.byteLength(first.text)));
      assert.equal(first.headers['transfer-encoding'], undefined);
      const again = await charge(key);
      assert.equal(again.status, 201);
      assert.equal(again.text, first.text);
      assert.equal(again.headers.location, first.headers.location);
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(again.headers['set-cookie'], undefined);
      assert.equal(upstream.charges.filter((c) => c.id === (first.json as { id: string }).id).length, 1);
    });

    it('runs the upstream once for 10 concurrent duplicates of one key', async () => {
      const key = newKey();
      const before = upstream.hitCount('/charges');
      const answers = await Promise.all(Array.from({ length: 10 }, () => charge(key, { amount: 700, ms: 150 })));
      // A duplicate whose claim reaches a slow store after the first one finished gets the replay.
      const created = answers.filter((a) => a.status === 201 && a.headers['idempotent-replayed'] === undefined);
      assert.equal(created.length, 1, `one ran: ${answers.map((a) => a.status).join(',')}`);
      for (const answer of answers.filter((a) => a !== created[0])) {
        if (answer.status === 201) assert.equal(answer.text, created[0]?.text, 'a late duplicate gets the replay');
        else assert.equal(answer.status, 409);
      }
      const settled = await untilSettled(() => charge(key, { amount: 700, ms: 150 }));
      assert.equal(settled.text, created[0]?.text);
      assert.equal(upstream.hitCount('/charges') - before, 1);
    });

    it('answers 422 to the same key with another body, and 422 to the same key with another query', async () => {
      const key = newKey();
      assert.equal((await charge(key, { amount: 1 })).status, 201);
      const before = upstream.hitCount('/charges');
      const other = await charge(key, { amount: 2 });
      assert.equal(other.status, 422);
      assert.match(String(other.headers['content-type']), /problem\+json/);
      const query = await send(`${gateway.url}/charges?currency=eur`, {
        body: { amount: 1 },
        headers: { authorization: 'Bearer test-client', 'idempotency-key': key },
      });
      assert.equal(query.status, 422);
      assert.equal(upstream.hitCount('/charges'), before);
    });

    it('keeps clients apart: the same key under other credentials runs again', async () => {
      const key = newKey();
      const alice = await charge(key, { amount: 5 }, { authorization: 'Bearer alice' });
      const bob = await charge(key, { amount: 5 }, { authorization: 'Bearer bob' });
      assert.notEqual(alice.text, bob.text);
      const aliceAgain = await charge(key, { amount: 5 }, { authorization: 'Bearer alice' });
      assert.equal(aliceAgain.text, alice.text);
      assert.equal(aliceAgain.headers['idempotent-replayed'], 'true');
    });

    it('passes requests without a key and GETs through unprotected', async () => {
      const before = upstream.hitCount('/charges');
      await charge(undefined);
      await charge(undefined);
      assert.equal(upstream.hitCount('/charges') - before, 2);
      const list = await send(`${gateway.url}/charges`, { method: 'GET' });
      assert.equal(list.status, 200);
      assert.equal((list.json as { count: number }).count, upstream.charges.length);
    });

    it('releases the key of a 5xx so the retry reaches the upstream again', async () => {
      const key = newKey();
      const before = upstream.hitCount('/fail');
      const post = () =>
        send(`${gateway.url}/fail`, {
          body: {},
          headers: { authorization: 'Bearer test-client', 'idempotency-key': key },
        });
      const first = await post();
      const second = await post();
      if (before === 0) {
        assert.equal(first.status, 500);
        assert.equal(second.status, 201);
      }
      assert.equal((await post()).headers['idempotent-replayed'], 'true');
      assert.equal(upstream.hitCount('/fail') - before, before === 0 ? 2 : 1);
    });

    it('forwards the request body byte for byte, the query, and X-Forwarded headers', async () => {
      const raw = '{"b": 2,   "a": [1, 2, 3], "text": "caf\u00e9"}';
      const answer = await send(`${gateway.url}/echo?x=1&y=two`, {
        body: raw,
        headers: {
          'content-type': 'application/json',
          authorization: 'Bearer test-client',
          'idempotency-key': newKey(),
          'x-custom': 'kept',
        },
      });
      assert.equal(answer.status, 200);
      const echo = answer.json as { url: string; headers: Record<string, string>; body: string };
      assert.equal(Buffer.from(echo.body, 'base64').toString('utf8'), raw);
      assert.equal(echo.url, '/echo?x=1&y=two');
      assert.equal(echo.headers['x-custom'], 'kept');
      assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(echo.headers['x-forwarded-host'], new URL(gateway.url).host);
      assert.equal(echo.headers.host, new URL(upstream.url).host);
    });

    it('streams an unprotected request body to the upstream as it arrives', async () => {
      const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request(
          `${gateway.url}/echo`,
          { method: 'PUT', headers: { 'content-type': 'text/plain' } },
          (res) => {
            let text = '';
            res.on('data', (chunk: Buffer) => {
              text += chunk;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          },
        );
        req.on('error', reject);
        req.write('part one, ');
        setTimeout(() => req.end('part two'), 100);
      });
      assert.equal(answer.status, 200);
      const echo = JSON.parse(answer.text) as { body: string; headers: Record<string, string> };
      assert.equal(Buffer.from(echo.body, 'base64').toString(), 'part one, part two');
      assert.equal(echo.headers['transfer-encoding'], 'chunked');
    });

    it('streams the upstream response to the client before it ends, and replays the same bytes', async () => {
      const key = newKey();
      const started = Date.now();
      const timing = await new Promise<{ firstChunkMs: number; endMs: number; text: string }>((resolve, reject) => {
        const body = JSON.stringify({ chunks: 5, gapMs: 120 });
        const req = request(
          `${gateway.url}/stream`,
          {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'content-length': body.length,
              authorization: 'Bearer test-client',
              'idempotency-key': key,
            },
          },
          (res) => {
            let firstChunkMs = -1;
            let text = '';
            res.on('data', (chunk: Buffer) => {
              if (firstChunkMs < 0) firstChunkMs = Date.now() - started;
              text += chunk;
            });
            res.on('end', () => resolve({ firstChunkMs, endMs: Date.now() - started, text }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
      assert.ok(
        timing.endMs - timing.firstChunkMs >= 400,
        `the first chunk came ${timing.firstChunkMs} ms in, the end ${timing.endMs} ms`,
      );
      assert.match(timing.text, /chunk 4 run/);
      const again = await send(`${gateway.url}/stream`, {
        body: { chunks: 5, gapMs: 120 },
        headers: { authorization: 'Bearer test-client', 'idempotency-key': key },
      });
      assert.equal(again.text, timing.text);
      assert.equal(again.headers['idempotent-replayed'], 'true');
    });

    it('answers its health endpoint and Prometheus metrics without forwarding them', async () => {
      const health = await send(`${gateway.url}/__idem/health`, { method: 'GET' });
      assert.equal(health.status, 200);
      assert.equal((health.json as { status: string; store: string }).status, 'ok');
      assert.equal((health.json as { store: string }).store, name);
      const metrics = await send(`${gateway.url}/__idem/metrics`, { method: 'GET' });
      assert.equal(metrics.status, 200);
      assert.match(String(metrics.headers['content-type']), /^text\/plain; version=0\.0\.4/);
      for (const counter of ['runs', 'replays', 'conflicts', 'mismatches', 'refusals']) {
        assert.match(metrics.text, new RegExp(`^idem_${counter}_total \\d+$`, 'm'));
      }
      assert.match(metrics.text, /^idem_replays_total [1-9]\d*$/m);
      assert.match(metrics.text, /^idem_conflicts_total [1-9]\d*$/m);
      assert.match(metrics.text, /^idem_mismatches_total [1-9]\d*$/m);
      assert.match(metrics.text, /^idem_store_errors_total\{step="begin"\} 0$/m);
      assert.match(metrics.text, /^idem_store_latency_seconds_bucket\{le="\+Inf"\} [1-9]\d*$/m);
      assert.match(metrics.text, /^idem_store_latency_seconds_count [1-9]\d*$/m);
    });
  });
}
