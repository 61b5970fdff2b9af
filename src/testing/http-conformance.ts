import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as nodeTest from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Store } from '../core/store.js';
import type { HttpIdempotencyOptions } from '../http/http-idempotency.js';
import { MemoryStore } from '../stores/memory/memory-store.js';
import { ConformanceApp } from './conformance-app.js';
import { assertProblem, type SendOptions, send } from './http-client.js';
import { type Scenario, scopeScenarios } from './http-scope-scenarios.js';
import { streamScenarios } from './http-stream-scenarios.js';
import type { ConformanceTestApi } from './store-conformance.js';

/** A running test server: its base URL and how to stop it. */
export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

export interface HttpConformanceOptions {
  /** Shown in test titles, e.g. `express on postgres`. */
  name: string;
  /**
   * Starts a server that serves every route of `ConformanceApp.routes` through the adapter,
   * configured with `options`, each route answering with `app.handle(op, parsedJsonBody)`.
   */
  start(options: HttpIdempotencyOptions, app: ConformanceApp): Promise<RunningServer>;
  /** A fresh store for each scenario. Default: a new MemoryStore. */
  createStore?: () => Promise<Store> | Store;
  /** Scenarios to skip, by title substring, with the reason. */
  skip?: Record<string, string>;
  /** The test runner. Default `node:test`. */
  test?: ConformanceTestApi;
}

/** The caller of every scenario but the scoping ones: keys are refused without a credential. */
const CALLER = { authorization: 'Bearer conformance-client' };

/**
 * Registers the HTTP conformance suite: the semantics of the IETF Idempotency-Key draft (and
 * Stripe's) through one adapter, over real HTTP on loopback.
 *
 * @example
 * ```ts
 * runHttpConformance({ name: 'my-framework', start: async (options, app) => startMyServer(options, app) });
 * ```
 */
export function runHttpConformance(config: HttpConformanceOptions): void {
  const api: ConformanceTestApi = config.test ?? (nodeTest as unknown as ConformanceTestApi);

  const scenario = (title: string, overrides: Partial<HttpIdempotencyOptions>, body: Scenario) => {
    const skip = Object.entries(config.skip ?? {}).find(([part]) => title.includes(part))?.[1] ?? false;
    api.it(title, { skip, timeout: 60_000 }, async () => {
      const store = overrides.store ?? (await (config.createStore ?? (() => new MemoryStore()))());
      const app = new ConformanceApp();
      const server = await config.start({ leaseMs: 10_000, ...overrides, store }, app);
      try {
        await body({ url: server.url, app, store });
      } finally {
        await server.close();
        await store.close();
      }
    });
  };

  const key = () => randomUUID();
  const post = (url: string, path: string, idemKey: string | string[] | undefined, options: SendOptions = {}) =>
    send(`${url}${path}`, {
      body: { amount: 500 },
      ...options,
      headers: { ...CALLER, ...(idemKey === undefined ? {} : { 'idempotency-key': idemKey }), ...options.headers },
    });

  api.describe(`HTTP conformance: ${config.name}`, () => {
    scenario(
      'runs the first request and replays its 201, body, Location and ETag for a repeated key, without Set-Cookie',
      {},
      async ({ url, app }) => {
        const k = key();
        const first = await post(url, '/charges', `"${k}"`);
        assert.equal(first.status, 201);
        assert.equal(first.headers['idempotent-replayed'], undefined);
        assert.ok(first.headers['set-cookie'], 'the first answer keeps its cookie');
        const again = await post(url, '/charges', `"${k}"`);
        assert.equal(again.status, 201);
        assert.deepEqual(again.json, first.json);
        assert.equal(again.headers.location, first.headers.location);
        assert.equal(again.headers.etag, first.headers.etag);
        assert.match(String(again.headers['content-type']), /^application\/json/);
        assert.equal(again.headers['idempotent-replayed'], 'true');
        assert.equal(again.headers['set-cookie'], undefined, 'Set-Cookie is never replayed');
        assert.equal(again.headers['x-run'], undefined, 'headers off the allow-list are not replayed');
        assert.equal(app.count('charges'), 1);
      },
    );

    scenario('treats a bare token and the same Structured Field string as one key', {}, async ({ url, app }) => {
      const k = key();
      await post(url, '/charges', k);
      const again = await post(url, '/charges', `"${k}"`);
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(app.count('charges'), 1);
    });

    scenario('refuses malformed keys with 400 problem+json and runs nothing', {}, async ({ url, app }) => {
      const bad: (string | string[])[] = [
        '""',
        'x'.repeat(256),
        '"a", "b"',
        'a,b',
        ['one', 'two'],
        '"unterminated',
        '"caf\u00e9"',
        'has space',
        '"k";p=1',
      ];
      for (const value of bad) {
        const response = await post(url, '/charges', value);
        assertProblem(response, 400, 'key-invalid');
      }
      assert.equal(app.count('charges'), 0);
    });

    scenario('accepts a 255-character key', {}, async ({ url }) => {
      const response = await post(url, '/charges', key().padEnd(255, 'k'));
      assert.equal(response.status, 201);
    });

    scenario('answers 400 key-missing when a key is required and absent', { required: true }, async ({ url, app }) => {
      assertProblem(await post(url, '/charges', undefined), 400, 'key-missing');
      assert.equal(app.count('charges'), 0);
    });

    scenario('lets a request without a key through, unprotected, when keys are optional', {}, async ({ url, app }) => {
      await post(url, '/charges', undefined);
      await post(url, '/charges', undefined);
      assert.equal(app.count('charges'), 2);
    });

    scenario(
      'answers 409 with Retry-After to a duplicate while the first is running, then replays',
      {},
      async ({ url, app }) => {
        const k = key();
        const first = post(url, '/slow', k, { body: { ms: 300 } });
        await until(() => app.count('slow') === 1); // the first request holds the key
        const duplicate = await post(url, '/slow', k, { body: { ms: 300 } });
        assertProblem(duplicate, 409, 'in-progress');
        assert.equal(
          duplicate.headers['retry-after'],
          '1',
          'retry soon after a short handler, not when the lease ends',
        );
        assert.equal((await first).status, 201);
        const after = await post(url, '/slow', k, { body: { ms: 300 } });
        assert.equal(after.headers['idempotent-replayed'], 'true');
        assert.equal(app.count('slow'), 1);
      },
    );

    scenario(
      'waits for the first request and replays it with onInProgress: wait',
      { onInProgress: 'wait', waitTimeoutMs: 5000 },
      async ({ url, app }) => {
        const k = key();
        const all = await Promise.all(Array.from({ length: 5 }, () => post(url, '/slow', k, { body: { ms: 200 } })));
        assert.equal(app.count('slow'), 1);
        for (const response of all) {
          assert.equal(response.status, 201);
          assert.deepEqual(response.json, all[0]?.json);
        }
        assert.equal(all.filter((r) => r.headers['idempotent-replayed'] === 'true').length, 4);
      },
    );

    scenario('answers 422 to the same key with another body, and runs nothing', {}, async ({ url, app }) => {
      const k = key();
      await post(url, '/charges', k, { body: { amount: 500 } });
      assertProblem(await post(url, '/charges', k, { body: { amount: 900 } }), 422, 'key-reused');
      assert.equal(app.count('charges'), 1);
    });

    scenario('sees the same JSON with keys in another order as the same request', {}, async ({ url, app }) => {
      const k = key();
      await post(url, '/charges', k, {
        body: '{"amount":500,"currency":"eur"}',
        headers: { 'content-type': 'application/json' },
      });
      const again = await post(url, '/charges', k, {
        body: '{"currency":"eur","amount":500}',
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(app.count('charges'), 1);
    });

    scenario('answers 422 to the same key on the same route with another query string', {}, async ({ url, app }) => {
      const k = key();
      assert.equal((await post(url, '/charges?currency=eur', k)).status, 201);
      assertProblem(await post(url, '/charges?currency=usd', k), 422, 'key-reused');
      const same = await post(url, '/charges?currency=eur', k);
      assert.equal(same.headers['idempotent-replayed'], 'true');
      assert.equal(app.count('charges'), 1);
    });

    scenario('does not store a 5xx: the key is released and a retry runs again', {}, async ({ url, app }) => {
      const k = key();
      assert.equal((await post(url, '/flaky', k)).status, 500);
      const retry = await post(url, '/flaky', k);
      assert.equal(retry.status, 201);
      const replay = await post(url, '/flaky', k);
      assert.equal(replay.headers['idempotent-replayed'], 'true');
      assert.equal(app.count('flaky'), 2);
    });

    scenario('stores 200, 402 and 410, but not 400, 401, 403, 404, 408, 409, 422 or 429', {}, async ({ url, app }) => {
      const stored = [200, 402, 410];
      const notStored = [400, 401, 403, 404, 408, 409, 422, 429];
      for (const status of [...stored, ...notStored]) {
        const k = key();
        await post(url, '/status', k, { body: { status } });
        const again = await post(url, '/status', k, { body: { status } });
        assert.equal(again.status, status);
        const replayed = stored.includes(status) ? 'true' : undefined;
        assert.equal(again.headers['idempotent-replayed'], replayed, `status ${status}`);
      }
      assert.equal(app.count('status'), stored.length + notStored.length * 2);
    });

    scenario('runs a corrected request with the key of one that failed validation (422)', {}, async ({ url, app }) => {
      const k = key();
      assert.equal((await post(url, '/status', k, { body: { status: 422 } })).status, 422);
      const corrected = await post(url, '/status', k, { body: { status: 201 } });
      assert.equal(corrected.status, 201);
      const again = await post(url, '/status', k, { body: { status: 201 } });
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(app.count('status'), 2);
    });

    scenario(
      'stores a 500 and a 422 once the handler ran, with the stripe preset',
      { policy: 'stripe' },
      async ({ url, app }) => {
        const k = key();
        assert.equal((await post(url, '/flaky', k)).status, 500);
        const again = await post(url, '/flaky', k);
        assert.equal(again.status, 500);
        assert.equal(again.headers['idempotent-replayed'], 'true');
        assert.equal(app.count('flaky'), 1);
        const invalid = key();
        await post(url, '/status', invalid, { body: { status: 422 } });
        const replay = await post(url, '/status', invalid, { body: { status: 422 } });
        assert.equal(replay.headers['idempotent-replayed'], 'true');
        assert.equal(app.count('status'), 1);
      },
    );

    scenario('releases the key when the handler throws, so a retry runs again', {}, async ({ url, app }) => {
      const k = key();
      const first = await post(url, '/throw', k);
      assert.ok(first.status >= 500);
      await post(url, '/throw', k);
      assert.equal(app.count('throw'), 2);
    });

    scopeScenarios(scenario);
    streamScenarios(scenario);

    scenario('never protects GET, and protects PUT only when asked', {}, async ({ url, app }) => {
      const k = key();
      await send(`${url}/charges`, { method: 'GET', headers: { 'idempotency-key': k } });
      await send(`${url}/charges`, { method: 'GET', headers: { 'idempotency-key': k } });
      assert.equal(app.count('list'), 2);
      await post(url, '/charges', k, { method: 'PUT' });
      await post(url, '/charges', k, { method: 'PUT' });
      assert.equal(app.count('charges'), 2);
    });

    scenario('replays PUT when PUT is listed in methods', { methods: ['POST', 'PUT'] }, async ({ url, app }) => {
      const k = key();
      await post(url, '/charges', k, { method: 'PUT' });
      const again = await post(url, '/charges', k, { method: 'PUT' });
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(app.count('charges'), 1);
    });

    scenario(
      'refuses a body over maxBodyBytes with 413 before storing anything',
      { maxBodyBytes: 1000 },
      async ({ url, app }) => {
        const k = key();
        assertProblem(
          await post(url, '/charges', k, { body: { amount: 1, pad: 'x'.repeat(5000) } }),
          413,
          'request-too-large',
        );
        assert.equal(app.count('charges'), 0);
        const small = await post(url, '/charges', k, { body: { amount: 1 } });
        assert.equal(small.status, 201, 'the refused request left no record behind');
      },
    );

    scenario('replays a binary body byte for byte, every byte value included', {}, async ({ url, app }) => {
      const k = key();
      const first = await post(url, '/big', k, { body: { size: 3000 } });
      assert.equal(first.status, 201);
      assert.equal(first.body.length, 3000);
      assert.equal(new Set(first.body).size, 256, 'the body holds every byte value');
      const again = await post(url, '/big', k, { body: { size: 3000 } });
      assert.equal(again.status, 201);
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(again.headers['content-length'], '3000');
      assert.ok(Buffer.from(again.body).equals(Buffer.from(first.body)), 'the replay differs from the first body');
      assert.equal(app.count('big'), 1);
    });

    scenario(
      'sends a response over maxResultBytes in full, then answers 410 to retries without running again',
      { maxResultBytes: 10_000 },
      async ({ url, app }) => {
        const k = key();
        const first = await post(url, '/big', k, { body: { size: 50_000 } });
        assert.equal(first.status, 201);
        assert.equal(first.body.length, 50_000);
        assertProblem(await post(url, '/big', k, { body: { size: 50_000 } }), 410, 'response-not-stored');
        assert.equal(app.count('big'), 1);
      },
    );

    scenario(
      'stores the response of a handler that finishes after the client gave up, so the retry replays it',
      {},
      async ({ url, app }) => {
        const k = key();
        await assert.rejects(post(url, '/slow', k, { body: { ms: 300 }, abortAfterMs: 50 }));
        await sleep(400);
        // A client honouring 409: on a loaded machine the first handler may not have finished yet.
        let retry = await post(url, '/slow', k, { body: { ms: 300 } });
        for (let waited = 0; retry.status === 409 && waited < 5000; waited += 100) {
          await sleep(100);
          retry = await post(url, '/slow', k, { body: { ms: 300 } });
        }
        assert.equal(retry.status, 201);
        assert.equal(retry.headers['idempotent-replayed'], 'true');
        assert.deepEqual(retry.json, { id: 'sl_1' }, 'the replay carries the body the handler sent');
        assert.equal(app.count('slow'), 1);
      },
    );

    scenario(
      'answers 503 and runs nothing when the store is down',
      { store: unreachableStore(), storeTimeoutMs: 200 },
      async ({ url, app }) => {
        const refused = await post(url, '/charges', key());
        assertProblem(refused, 503, 'store-unavailable');
        assert.ok(refused.headers['retry-after'], 'a 503 says when to retry');
        assert.equal(refused.headers['idempotent-unprotected'], undefined);
        assert.equal(app.count('charges'), 0);
      },
    );

    const unprotectedEvents: string[] = [];
    scenario(
      "runs the handler unprotected on every call, says so in Idempotent-Unprotected, when the store is down and onStoreUnavailable is 'run-unprotected'",
      {
        store: unreachableStore(),
        onStoreUnavailable: 'run-unprotected',
        observe: (event) => unprotectedEvents.push(event.type),
      },
      async ({ url, app }) => {
        unprotectedEvents.length = 0;
        const k = key();
        for (const expected of [1, 2]) {
          const response = await post(url, '/charges', k);
          assert.equal(response.status, 201);
          assert.equal(response.headers['idempotent-unprotected'], 'true');
          assert.equal(response.headers['idempotent-replayed'], undefined);
          assert.equal(app.count('charges'), expected, 'no record: the same key runs again');
        }
        assert.equal(unprotectedEvents.filter((type) => type === 'unprotected').length, 2);
      },
    );

    scenario(
      'takes failOpen: true as the old spelling of run-unprotected',
      { store: unreachableStore(), failOpen: true },
      async ({ url, app }) => {
        const response = await post(url, '/charges', key());
        assert.equal(response.status, 201);
        assert.equal(response.headers['idempotent-unprotected'], 'true');
        assert.equal(app.count('charges'), 1);
      },
    );
  });
}

/** Resolves once `done()` is true, checking every 5 ms; fails after 5 s. */
async function until(done: () => boolean): Promise<void> {
  for (let waited = 0; !done(); waited += 5) {
    if (waited > 5000) throw new Error('the condition did not come true within 5 s');
    await sleep(5);
  }
}

/** A store whose every call fails as a refused connection would. */
export function unreachableStore(): Store {
  const fail = async (): Promise<never> => {
    throw new Error('connect ECONNREFUSED 127.0.0.1:1');
  };
  return {
    name: 'unreachable',
    claim: fail,
    complete: fail,
    release: fail,
    extend: fail,
    get: fail,
    close: async () => {},
  };
}
