import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { assertProblem, type SentResponse, send } from '../../src/testing/http-client.js';
import { type PrivateServer, startPrivateRedis } from '../stores/private-server.js';
import { newKey, type RunningIdem, runIdem, startIdem, TestUpstream } from './helpers.js';

const charge = (url: string, key: string) =>
  send(`${url}/charges`, {
    method: 'POST',
    body: { amount: 500 },
    headers: { authorization: 'Bearer store-faults', 'idempotency-key': key },
  });

/** The value of one counter in the gateway's Prometheus text. */
async function metric(url: string, name: string): Promise<number> {
  const text = (await send(`${url}/__idem/metrics`, { method: 'GET' })).text;
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1] ?? Number.NaN);
}

/** Sends `request` until it answers without `Idempotent-Unprotected` (the store is back), for at most 15 s. */
async function untilProtected(request: () => Promise<SentResponse>): Promise<SentResponse> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const answer = await request();
    if (answer.headers['idempotent-unprotected'] === undefined || Date.now() > deadline) return answer;
    await sleep(100);
  }
}

describe('idem serve when its store is down', () => {
  const upstream = new TestUpstream();
  let redis: PrivateServer;
  let closed: RunningIdem;
  let open: RunningIdem;
  before(async () => {
    await upstream.start();
    redis = await startPrivateRedis();
    const common = ['--upstream', upstream.url, '--store-timeout', '2s'];
    closed = await startIdem([...common, '--store', `${redis.url}/0`]);
    open = await startIdem([...common, '--store', `${redis.url}/1`, '--on-store-unavailable', 'run-unprotected']);
  });
  after(async () => {
    await closed?.stop();
    await open?.stop();
    await redis.dispose();
    await upstream.close();
  });

  it('fails closed by default and forwards unprotected, with the header and the metric, under run-unprotected; protection resumes once the store is back', async () => {
    const k = newKey();
    assert.equal((await charge(open.url, k)).status, 201);
    assert.equal((await charge(open.url, k)).headers['idempotent-replayed'], 'true', 'protected while the store is up');
    const before = upstream.hitCount('/charges');
    await redis.stop();

    const refused = await charge(closed.url, newKey());
    assertProblem(refused, 503, 'store-unavailable');
    assert.ok(refused.headers['retry-after']);
    assert.equal(upstream.hitCount('/charges'), before, 'fail closed: nothing forwarded');

    const down = newKey();
    for (const expected of [1, 2]) {
      const response = await charge(open.url, down);
      assert.equal(response.status, 201);
      assert.equal(response.headers['idempotent-unprotected'], 'true');
      assert.equal(upstream.hitCount('/charges'), before + expected, 'no record: the same key is forwarded again');
    }
    assert.equal(await metric(open.url, 'idem_unprotected_total'), 2);
    assert.equal(await metric(closed.url, 'idem_unprotected_total'), 0);

    await redis.start();
    const back = newKey();
    const first = await untilProtected(() => charge(open.url, back));
    assert.equal(first.status, 201);
    const hits = upstream.hitCount('/charges');
    const again = await charge(open.url, back);
    assert.equal(again.headers['idempotent-replayed'], 'true', 'protected again: the retry replays');
    assert.equal(again.headers['idempotent-unprotected'], undefined);
    assert.equal(upstream.hitCount('/charges'), hits);
  });

  it('refuses an unknown --on-store-unavailable, and --fail-open against reject, saying what is allowed', async () => {
    const bad = await runIdem([
      'serve',
      '--upstream',
      upstream.url,
      '--store',
      'memory:',
      '--on-store-unavailable',
      'open',
    ]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--on-store-unavailable: "open" is not one of reject, run-unprotected/);
    const both = await runIdem([
      'serve',
      '--upstream',
      upstream.url,
      '--store',
      'memory:',
      '--fail-open',
      '--on-store-unavailable',
      'reject',
    ]);
    assert.notEqual(both.code, 0);
    assert.match(both.stderr, /--fail-open contradicts --on-store-unavailable reject/);
  });
});
