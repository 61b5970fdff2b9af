import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { send } from '../../src/testing/http-client.js';
import { dropStore as dropPostgres, postgresUrl } from '../stores/postgres.factory.js';
import { dropStore as dropRedis, prefixOf, redisUrl } from '../stores/redis.factory.js';
import { newKey, type RunningIdem, startIdem, TestUpstream, untilSettled } from './helpers.js';

// A table and prefix of this run's own: another run on the same servers must not drop them mid-test.
const namespace = `cli_cluster_${process.pid}`;
const shared: [string, string, () => Promise<void>][] = [
  ['postgres', `${postgresUrl}?table=idem_${namespace}`, () => dropPostgres(namespace)],
  ['redis', `${redisUrl}/?prefix=${prefixOf(namespace)}`, () => dropRedis(namespace)],
];

for (const [name, storeUrl, drop] of shared) {
  describe(`two idem serve processes on one ${name}`, () => {
    const upstream = new TestUpstream();
    let gateways: RunningIdem[] = [];

    before(async () => {
      await drop();
      await upstream.start();
      gateways = await Promise.all([1, 2].map(() => startIdem(['--upstream', upstream.url, '--store', storeUrl])));
    });
    after(async () => {
      for (const gateway of gateways) assert.equal(await gateway.stop(), 0);
      await upstream.close();
      await drop();
    });

    it('run the upstream once for a key sent to both at once, and both replay the one answer', async () => {
      for (let round = 0; round < 5; round++) {
        const key = newKey();
        const before = upstream.hitCount('/charges');
        const post = (i: number) =>
          send(`${gateways[i % 2]?.url}/charges`, {
            body: { amount: 100 + round, ms: 100 },
            headers: { authorization: 'Bearer test-client', 'idempotency-key': key },
          });
        const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => post(i)));
        // A request that arrives after the first one completed gets the replay, a 201 too.
        const ran = answers.filter((a) => a.status === 201 && a.headers['idempotent-replayed'] !== 'true');
        const statuses = answers.map((a) => `${a.status}${a.headers['idempotent-replayed'] ? ' (replay)' : ''}`);
        assert.equal(ran.length, 1, statuses.join(','));
        assert.ok(answers.every((a) => a.status === 201 || a.status === 409));
        const winner = ran[0];
        for (const i of [0, 1]) {
          const replay = await untilSettled(() => post(i));
          assert.equal(replay.text, winner?.text, `gateway ${i + 1} replays the same answer`);
          assert.equal(replay.headers['idempotent-replayed'], 'true');
        }
        assert.equal(upstream.hitCount('/charges') - before, 1, `round ${round}: one upstream run`);
      }
    });

    it('see the other process key reused with another body as a mismatch', async () => {
      const key = newKey();
      const first = await send(`${gateways[0]?.url}/charges`, {
        body: { amount: 1 },
        headers: { authorization: 'Bearer test-client', 'idempotency-key': key },
      });
      assert.equal(first.status, 201);
      const other = await send(`${gateways[1]?.url}/charges`, {
        body: { amount: 2 },
        headers: { authorization: 'Bearer test-client', 'idempotency-key': key },
      });
      assert.equal(other.status, 422);
    });
  });
}
