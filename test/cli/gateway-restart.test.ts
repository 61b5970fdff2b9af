// `idem serve --store <url>` while its store's server restarts: a private PostgreSQL (immediate
// shutdown) and a private Redis with an append-only file fsynced on every write (SIGKILL), each
// on its own port, never the shared one. While the server is down the gateway answers 503 and
// forwards nothing (fail closed); once it is back, the same gateway process replays what was
// stored before the restart and runs new keys: its store client reconnected by itself.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { send } from '../../src/testing/http-client.js';
import { type PrivateServer, startPrivatePostgres, startPrivateRedis } from '../stores/private-server.js';
import { newKey, type RunningIdem, startIdem, TestUpstream } from './helpers.js';

const servers: Record<'postgres' | 'redis', () => Promise<PrivateServer>> = {
  postgres: () => startPrivatePostgres(),
  redis: () => startPrivateRedis({ persistent: true }),
};

for (const kind of ['postgres', 'redis'] as const) {
  describe(`idem serve on a private ${kind} that restarts`, () => {
    it('answers 503 and forwards nothing while the store is down, then replays and runs again by itself', async () => {
      const server = await servers[kind]();
      const upstream = new TestUpstream();
      let gateway: RunningIdem | undefined;
      try {
        await upstream.start();
        gateway = await startIdem(['--upstream', upstream.url, '--store', server.url, '--lease', '30s']);
        const url = `${gateway.url}/charges`;
        const charge = (key: string) =>
          send(url, { body: { amount: 500 }, headers: { authorization: 'Bearer c', 'idempotency-key': key } });

        const stored = newKey();
        const first = await charge(stored);
        assert.equal(first.status, 201);

        await server.stop();
        const refused = newKey();
        assert.equal((await charge(refused)).status, 503, 'a new key is refused while the store is down');
        assert.equal((await charge(stored)).status, 503, 'a stored key cannot be looked up either');
        assert.equal(upstream.hitCount('/charges'), 1, 'nothing was forwarded during the outage');

        await server.start();
        // The same gateway process: its client reconnects by itself (a bounded number of tries).
        let again = await charge(stored);
        for (let attempt = 0; again.status === 503 && attempt < 200; attempt++) {
          await sleep(50);
          again = await charge(stored);
        }
        assert.equal(again.status, 201);
        assert.equal(again.headers['idempotent-replayed'], 'true', 'the record stored before the restart is replayed');
        assert.equal(again.text, first.text);
        assert.equal((await charge(refused)).status, 201, 'the key refused during the outage runs now');
        assert.equal((await charge(newKey())).status, 201);
        assert.equal(upstream.hitCount('/charges'), 3, 'each key was forwarded once');
        assert.equal(await gateway.stop(), 0);
      } finally {
        await gateway?.stop('SIGKILL');
        await upstream.close();
        await server.dispose();
      }
    });
  });
}
