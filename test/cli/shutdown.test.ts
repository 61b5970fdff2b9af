import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { send } from '../../src/testing/http-client.js';
import { newKey, runIdem, startIdem, TestUpstream, tempDir } from './helpers.js';

const directory = tempDir();
const storeUrl = `sqlite:${join(directory, 'shutdown.db')}`;
after(() => rmSync(directory, { recursive: true, force: true }));

describe('idem serve shutdown', () => {
  const upstream = new TestUpstream();
  before(() => upstream.start());
  after(() => upstream.close());

  it('on SIGTERM stops accepting, lets the request in flight finish and store its answer, and exits 0', async () => {
    const gateway = await startIdem(['--upstream', upstream.url, '--store', storeUrl]);
    const key = newKey();
    const body = { amount: 77, ms: 700 };
    const inFlight = send(`${gateway.url}/charges`, {
      body,
      headers: { authorization: 'Bearer test-client', 'idempotency-key': key },
    });
    await sleep(200);
    const stopped = gateway.stop('SIGTERM');
    await sleep(100);
    await assert.rejects(send(`${gateway.url}/charges`, { body }), /ECONNREFUSED/, 'no new connections');
    const answer = await inFlight;
    assert.equal(answer.status, 201);
    assert.equal(await stopped, 0);
    assert.match(gateway.output().stderr, /SIGTERM: no longer accepting connections; 1 request\(s\) in flight/);
    assert.match(gateway.output().stderr, /stopped: 1 request\(s\) finished\./);

    const next = await startIdem(['--upstream', upstream.url, '--store', storeUrl]);
    const replay = await send(`${next.url}/charges`, {
      body,
      headers: { authorization: 'Bearer test-client', 'idempotency-key': key },
    });
    assert.equal(replay.headers['idempotent-replayed'], 'true', 'the answer finished during shutdown was stored');
    assert.equal(replay.text, answer.text);
    await next.stop();
  });

  it('after the grace period answers 503, releases the key of a request that cannot finish, and exits 0', async () => {
    const gateway = await startIdem([
      '--upstream',
      upstream.url,
      '--store',
      storeUrl,
      '--grace',
      '300ms',
      '--lease',
      '60s',
    ]);
    const key = newKey();
    const hung = send(`${gateway.url}/hang`, {
      body: {},
      headers: { authorization: 'Bearer test-client', 'idempotency-key': key },
    });
    await sleep(200);
    const started = Date.now();
    assert.equal(await gateway.stop('SIGTERM'), 0);
    assert.ok(Date.now() - started < 3000, 'the grace period bounds the wait');
    const answer = await hung;
    assert.equal(answer.status, 503);
    assert.match(answer.text, /key was released/);
    assert.match(gateway.output().stderr, /1 cut off after the grace period \(their keys were released\)/);

    const keys = await runIdem(['keys', 'list', '--store', storeUrl, '--state', 'in_progress']);
    assert.equal(keys.stdout, 'no records.\n', 'nothing is left in progress');
  });

  it('on SIGINT behaves as on SIGTERM', async () => {
    const gateway = await startIdem(['--upstream', upstream.url, '--store', 'memory:']);
    const code = await gateway.stop('SIGINT');
    assert.equal(code, 0, `${gateway.child.signalCode} ${JSON.stringify(gateway.output())}`);
    assert.match(gateway.output().stderr, /SIGINT: no longer accepting connections/);
  });
});
