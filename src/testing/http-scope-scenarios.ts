import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Store } from '../core/store.js';
import { callerScope } from '../http/caller-scope.js';
import type { HttpIdempotencyOptions } from '../http/http-idempotency.js';
import type { ConformanceApp } from './conformance-app.js';
import { assertProblem, type SentResponse, send } from './http-client.js';

/** One scenario of the HTTP conformance suite, run against a fresh server and store. */
export type Scenario = (ctx: { url: string; app: ConformanceApp; store: Store }) => Promise<void>;

/** Registers a scenario with the options it overrides. */
export type ScenarioRegistrar = (title: string, overrides: Partial<HttpIdempotencyOptions>, body: Scenario) => void;

/** A POST with `key` and exactly the caller headers given: no credential unless one is named. */
function postAs(
  caller: Record<string, string>,
  url: string,
  path: string,
  key: string,
  method = 'POST',
): Promise<SentResponse> {
  return send(`${url}${path}`, { method, body: { amount: 500 }, headers: { 'idempotency-key': key, ...caller } });
}

const replayed = (response: SentResponse) => response.headers['idempotent-replayed'] === 'true';

/**
 * Whose key is it: callers told apart by their credentials never see each other's responses,
 * callers Idem cannot tell apart are refused by default, and a key belongs to its caller across
 * routes unless `keyPerRoute` is set.
 */
export function scopeScenarios(scenario: ScenarioRegistrar): void {
  const pairs: [string, Record<string, string>, Record<string, string>][] = [
    ['Authorization', { authorization: 'Bearer alice' }, { authorization: 'Bearer bob' }],
    ['session cookie', { cookie: 'sid=alice; theme=dark' }, { cookie: 'sid=bob; theme=dark' }],
    ['X-API-Key', { 'x-api-key': 'key-alice' }, { 'x-api-key': 'key-bob' }],
  ];
  for (const [what, alice, bob] of pairs) {
    scenario(
      `keeps callers apart by ${what}: the same key, route and body under another ${what} runs again`,
      {},
      async ({ url, app }) => {
        const k = randomUUID();
        const first = await postAs(alice, url, '/charges', k);
        const other = await postAs(bob, url, '/charges', k);
        assert.equal(other.status, 201);
        assert.equal(replayed(other), false, `bob got alice's response: ${other.text}`);
        assert.notDeepEqual(other.json, first.json);
        const again = await postAs(alice, url, '/charges', k);
        assert.ok(replayed(again));
        assert.deepEqual(again.json, first.json);
        assert.equal(app.count('charges'), 2);
      },
    );
  }

  scenario(
    'refuses a keyed request without any credential with 400 caller-unknown, and lets one without a key through',
    {},
    async ({ url, app }) => {
      const k = randomUUID();
      assertProblem(await postAs({}, url, '/charges', k), 400, 'caller-unknown');
      const blank = { authorization: ' ', 'x-api-key': '', cookie: 'sid=; theme= ' };
      assertProblem(await postAs(blank, url, '/charges', k), 400, 'caller-unknown');
      assert.equal(app.count('charges'), 0);
      const unkeyed = await send(`${url}/charges`, { body: { amount: 500 } });
      assert.equal(unkeyed.status, 201, 'a request without a key passes through as before');
      assert.equal(app.count('charges'), 1);
    },
  );

  scenario(
    'runs two anonymous callers with the same key unprotected with anonymous: pass',
    { anonymous: 'pass' },
    async ({ url, app }) => {
      const k = randomUUID();
      const first = await postAs({}, url, '/charges', k);
      const second = await postAs({}, url, '/charges', k);
      assert.equal(second.status, 201);
      assert.equal(replayed(second), false);
      assert.notDeepEqual(second.json, first.json);
      assert.equal(app.count('charges'), 2);
    },
  );

  scenario(
    'puts anonymous callers in one scope only when asked with anonymous: shared',
    { anonymous: 'shared' },
    async ({ url, app }) => {
      const k = randomUUID();
      await postAs({}, url, '/charges', k);
      assert.ok(replayed(await postAs({}, url, '/charges', k)));
      const known = await postAs({ authorization: 'Bearer alice' }, url, '/charges', k);
      assert.equal(replayed(known), false, 'a known caller is never in the shared scope');
      assert.equal(app.count('charges'), 2);
    },
  );

  scenario(
    'scopes by the named cookie with callerScope({ cookies }), whatever the other cookies',
    { scope: callerScope({ cookies: ['sid'] }) },
    async ({ url, app }) => {
      const k = randomUUID();
      const first = await postAs({ cookie: 'sid=alice; theme=dark' }, url, '/charges', k);
      const again = await postAs({ cookie: 'theme=light; sid=alice; seen=1' }, url, '/charges', k);
      assert.ok(replayed(again));
      assert.deepEqual(again.json, first.json);
      assert.equal(replayed(await postAs({ cookie: 'sid=bob; theme=dark' }, url, '/charges', k)), false);
      assertProblem(await postAs({ cookie: 'theme=dark' }, url, '/charges', k), 400, 'caller-unknown');
      assert.equal(app.count('charges'), 2);
    },
  );

  scenario(
    'answers 422 when the same caller reuses a key on another route or method, and runs nothing',
    { methods: ['POST', 'PUT'] },
    async ({ url, app }) => {
      const k = randomUUID();
      const alice = { authorization: 'Bearer alice' };
      assert.equal((await postAs(alice, url, '/charges', k)).status, 201);
      assertProblem(await postAs(alice, url, '/other', k), 422, 'key-reused');
      assertProblem(await postAs(alice, url, '/charges', k, 'PUT'), 422, 'key-reused');
      assert.ok(replayed(await postAs(alice, url, '/charges', k)));
      assert.equal(app.count('charges'), 1);
    },
  );

  scenario('keeps a key per method and route with keyPerRoute: true', { keyPerRoute: true }, async ({ url, app }) => {
    const k = randomUUID();
    const alice = { authorization: 'Bearer alice' };
    await postAs(alice, url, '/charges', k);
    const other = await postAs(alice, url, '/other', k);
    assert.equal(other.status, 201);
    assert.equal(replayed(other), false);
    assert.ok(replayed(await postAs(alice, url, '/other', k)));
    assert.equal(app.count('charges'), 2);
  });
}
