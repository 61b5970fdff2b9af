import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { idempotency } from '../../src/adapters/express/index.js';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import type { IdemEvent } from '../../src/core/telemetry.js';
import { HttpIdempotency, type HttpIdempotencyOptions } from '../../src/http/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { assertProblem, type SentResponse, send } from '../../src/testing/http-client.js';
import type { RunningServer } from '../../src/testing/index.js';
import { type PrivateServer, startPrivateRedis } from '../stores/private-server.js';
import { CALLER, listen } from './serve.js';

/** An express app whose POST /charges counts its runs, behind `idempotency(options)`. */
async function chargesApp(options: HttpIdempotencyOptions): Promise<RunningServer & { runs: () => number }> {
  let runs = 0;
  const app = express();
  app.use(express.json());
  app.post('/charges', idempotency(options), (_req, res) => {
    runs += 1;
    res.status(201).json({ id: `ch_${runs}` });
  });
  return { ...(await listen(createServer(app))), runs: () => runs };
}

const post = (url: string, key: string) =>
  send(`${url}/charges`, { body: { amount: 500 }, headers: { ...CALLER, 'idempotency-key': key } });

describe('the HTTP layer over a store that is really down (express, a private redis-server)', () => {
  let redis: PrivateServer;
  before(async () => {
    redis = await startPrivateRedis();
  });
  after(async () => {
    await redis.dispose();
  });

  it('answers 503 with Retry-After by default and runs unprotected, reported, under run-unprotected; protection resumes once the store is back', async () => {
    const closedStore = new RedisStore({ url: redis.url, prefix: 'idem_faults_http_closed:' });
    const openStore = new RedisStore({ url: redis.url, prefix: 'idem_faults_http_open:' });
    const events: IdemEvent[] = [];
    const closed = await chargesApp({ store: closedStore, storeTimeoutMs: 2000 });
    const open = await chargesApp({
      store: openStore,
      storeTimeoutMs: 2000,
      onStoreUnavailable: 'run-unprotected',
      onEvent: (event) => events.push(event),
    });
    try {
      const warm = `warm-${Date.now()}`;
      assert.equal((await post(open.url, warm)).status, 201);
      assert.equal((await post(open.url, warm)).headers['idempotent-replayed'], 'true');
      await redis.stop();

      const refused = await post(closed.url, 'down-1');
      assertProblem(refused, 503, 'store-unavailable');
      assert.ok(refused.headers['retry-after'], 'a 503 says when to retry');
      assert.equal(closed.runs(), 0, 'fail closed: the handler did not run');

      for (const expected of [2, 3]) {
        const response = await post(open.url, 'down-1');
        assert.equal(response.status, 201);
        assert.equal(response.headers['idempotent-unprotected'], 'true');
        assert.equal(open.runs(), expected, 'no record: the same key runs again');
      }
      const unprotected = events.filter((e) => e.type === 'unprotected_run');
      assert.deepEqual(
        unprotected.map((e) => e.face),
        ['http', 'http'],
      );

      await redis.start();
      // The client reconnects a moment after the server is back: until then, a call still runs unprotected.
      let back = '';
      let first: SentResponse;
      for (let attempt = 0; ; attempt++) {
        back = `back-${attempt}`;
        first = await post(open.url, back);
        if (first.headers['idempotent-unprotected'] === undefined || attempt > 150) break;
        await sleep(100);
      }
      assert.equal(first.status, 201);
      const runs = open.runs();
      const again = await post(open.url, back);
      assert.equal(again.headers['idempotent-replayed'], 'true', 'protected again: the retry replays');
      assert.equal(open.runs(), runs);
    } finally {
      await closed.close();
      await open.close();
      await closedStore.close();
      await openStore.close();
    }
  });

  it('refuses an unknown onStoreUnavailable, or one that contradicts failOpen, with INVALID_OPTIONS', () => {
    const refuses = (options: Partial<HttpIdempotencyOptions>, pattern: RegExp) =>
      assert.throws(
        () => new HttpIdempotency({ store: new MemoryStore(), ...options }),
        (error: unknown) => isIdempotencyError(error, ErrorCode.INVALID_OPTIONS) && pattern.test(error.message),
      );
    refuses({ onStoreUnavailable: 'pass' as 'reject' }, /'reject'.*'run-unprotected'.*got "pass"/);
    refuses({ onStoreUnavailable: 'reject', failOpen: true }, /failOpen \(true\) contradicts onStoreUnavailable/);
  });
});
