import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { send } from '../../src/testing/http-client.js';
import { newKey, startIdem, TestUpstream, tempDir } from './helpers.js';

const directory = tempDir();
after(() => rmSync(directory, { recursive: true, force: true }));

describe('idem serve options', () => {
  const upstream = new TestUpstream();
  before(() => upstream.start());
  after(() => upstream.close());

  it('reads a JSON config file, and flags win over it', async () => {
    const config = join(directory, 'idem.json');
    writeFileSync(
      config,
      JSON.stringify({
        upstream: upstream.url,
        store: 'memory:',
        required: true,
        methods: ['POST', 'PUT'],
        lease: '5s',
        port: 1,
      }),
    );
    const gateway = await startIdem(['--config', config]);
    try {
      assert.match(gateway.output().stdout, /keys required on POST,PUT; retention 1d, lease 5s/);
      const missing = await send(`${gateway.url}/charges`, { body: { amount: 1 } });
      assert.equal(missing.status, 400);
      assert.equal((missing.json as { type: string }).type, 'urn:idem:problem:key-missing');
      const key = newKey();
      await send(`${gateway.url}/echo`, {
        method: 'PUT',
        body: {},
        headers: { authorization: 'Bearer test-client', 'idempotency-key': key },
      });
      const put = await send(`${gateway.url}/echo`, {
        method: 'PUT',
        body: {},
        headers: { authorization: 'Bearer test-client', 'idempotency-key': key },
      });
      assert.equal(put.headers['idempotent-replayed'], 'true', 'PUT is protected, from the file');
    } finally {
      await gateway.stop();
    }
  });

  it('answers replays from memory with --replay-cache: a key deleted from the store still replays here', async () => {
    for (const [cache, expected] of [
      [[], 2],
      [['--replay-cache', '1m'], 1],
    ] as const) {
      const path = join(directory, `replay-cache-${cache.length}.db`);
      const gateway = await startIdem(['--upstream', upstream.url, '--store', `sqlite:${path}`, ...cache]);
      const other = new SqliteStore({ path });
      try {
        const key = newKey();
        const headers = { authorization: 'Bearer test-client', 'idempotency-key': key };
        const first = await send(`${gateway.url}/charges`, { body: { amount: 7 }, headers });
        assert.equal(first.status, 201);
        const before = upstream.charges.length;
        // Another process deletes the record (as `idem keys delete` does), then the client retries.
        const { records } = await other.list();
        assert.equal(records.length, 1);
        assert.equal(await other.delete((records[0] as { key: string }).key), true);
        const retry = await send(`${gateway.url}/charges`, { body: { amount: 7 }, headers });
        assert.equal(retry.status, 201);
        const runs = 1 + upstream.charges.length - before;
        assert.equal(runs, expected, `upstream runs with ${cache.join(' ') || 'no cache'}`);
        if (expected === 1) assert.equal(retry.headers['idempotent-replayed'], 'true');
      } finally {
        await other.close();
        await gateway.stop();
      }
    }
  });

  it('stores 5xx answers too with --policy stripe', async () => {
    const fresh = await new TestUpstream().start();
    const gateway = await startIdem(['--upstream', fresh.url, '--store', 'memory:', '--policy', 'stripe']);
    try {
      const key = newKey();
      const post = () =>
        send(`${gateway.url}/fail`, {
          body: {},
          headers: { authorization: 'Bearer test-client', 'idempotency-key': key },
        });
      assert.equal((await post()).status, 500);
      const again = await post();
      assert.equal(again.status, 500);
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(fresh.hitCount('/fail'), 1);
    } finally {
      await gateway.stop();
      await fresh.close();
    }
  });

  it('refuses a protected body over --max-body with 413 and forwards nothing', async () => {
    const gateway = await startIdem(['--upstream', upstream.url, '--store', 'memory:', '--max-body', '1kb']);
    try {
      const before = upstream.hitCount('/charges');
      const big = await send(`${gateway.url}/charges`, {
        body: { amount: 1, pad: 'x'.repeat(4000) },
        headers: { authorization: 'Bearer test-client', 'idempotency-key': newKey() },
      });
      assert.equal(big.status, 413);
      assert.equal(upstream.hitCount('/charges'), before);
    } finally {
      await gateway.stop();
    }
  });

  it('scopes keys by the headers named in --scope-header', async () => {
    const gateway = await startIdem(['--upstream', upstream.url, '--store', 'memory:', '--scope-header', 'x-api-key']);
    try {
      const key = newKey();
      const as = (apiKey: string) =>
        send(`${gateway.url}/charges`, {
          body: { amount: 3 },
          headers: { 'idempotency-key': key, 'x-api-key': apiKey },
        });
      const a = await as('tenant-a');
      const b = await as('tenant-b');
      assert.notEqual(a.text, b.text);
      assert.equal((await as('tenant-a')).text, a.text);
    } finally {
      await gateway.stop();
    }
  });

  it('makes duplicates wait for the first answer with --on-in-progress wait', async () => {
    const gateway = await startIdem(['--upstream', upstream.url, '--store', 'memory:', '--on-in-progress', 'wait']);
    try {
      const key = newKey();
      const before = upstream.hitCount('/charges');
      const answers = await Promise.all(
        Array.from({ length: 5 }, () =>
          send(`${gateway.url}/charges`, {
            body: { amount: 8, ms: 200 },
            headers: { authorization: 'Bearer test-client', 'idempotency-key': key },
          }),
        ),
      );
      assert.deepEqual(
        answers.map((a) => a.status),
        [201, 201, 201, 201, 201],
      );
      assert.equal(new Set(answers.map((a) => a.text)).size, 1);
      assert.equal(upstream.hitCount('/charges') - before, 1);
    } finally {
      await gateway.stop();
    }
  });

  it('answers 502 when the upstream goes away and releases the key, so the retry runs once it is back', async () => {
    const flaky = await new TestUpstream().start();
    const port = new URL(flaky.url).port;
    const gateway = await startIdem(['--upstream', flaky.url, '--store', 'memory:']);
    try {
      await flaky.close();
      const key = newKey();
      const down = await send(`${gateway.url}/charges`, {
        body: { amount: 4 },
        headers: { authorization: 'Bearer test-client', 'idempotency-key': key },
      });
      assert.equal(down.status, 502);
      assert.match(down.text, /did not answer.*the key was released/);
      const back = new TestUpstream();
      await back.start(Number(port));
      try {
        const retry = await send(`${gateway.url}/charges`, {
          body: { amount: 4 },
          headers: { authorization: 'Bearer test-client', 'idempotency-key': key },
        });
        assert.equal(retry.status, 201);
        assert.equal(back.hitCount('/charges'), 1);
      } finally {
        await back.close();
      }
      const metrics = await send(`${gateway.url}/__idem/metrics`, { method: 'GET' });
      assert.match(metrics.text, /^idem_upstream_errors_total 1$/m);
      assert.match(metrics.text, /^idem_released_total 1$/m);
    } finally {
      await gateway.stop();
    }
  });

  it('cuts the client off when the upstream dies mid-response, and answers retries 410 instead of running it again', async () => {
    const gateway = await startIdem(['--upstream', upstream.url, '--store', 'memory:']);
    try {
      const key = newKey();
      const before = upstream.hitCount('/broken');
      const post = () =>
        send(`${gateway.url}/broken`, {
          body: {},
          headers: { authorization: 'Bearer test-client', 'idempotency-key': key },
        });
      await assert.rejects(post(), 'the client sees the response break, not a complete answer');
      const retry = await post();
      assert.equal(retry.status, 410, 'the upstream answered 200 before it broke: it may have acted');
      assert.equal((retry.json as { type: string }).type, 'urn:idem:problem:response-not-stored');
      assert.equal(upstream.hitCount('/broken') - before, 1, 'the retry did not reach the upstream');
    } finally {
      await gateway.stop();
    }
  });

  it('answers 504 after --upstream-timeout of silence and releases the key', async () => {
    const gateway = await startIdem(['--upstream', upstream.url, '--store', 'memory:', '--upstream-timeout', '300ms']);
    try {
      const key = newKey();
      const started = Date.now();
      const answer = await send(`${gateway.url}/hang`, {
        body: {},
        headers: { authorization: 'Bearer test-client', 'idempotency-key': key },
      });
      assert.equal(answer.status, 504);
      assert.ok(Date.now() - started < 2000);
      const again = await send(`${gateway.url}/hang`, {
        body: {},
        headers: { authorization: 'Bearer test-client', 'idempotency-key': key },
      });
      assert.equal(again.status, 504, 'the key was released: the retry ran (and timed out) again');
    } finally {
      await gateway.stop();
    }
  });
});
