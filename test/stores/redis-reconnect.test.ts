// How the Redis store's own client (from a `url`) behaves while a private redis-server is down
// and once it is back. The shared server on 6379 is never touched.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, idempotent, isIdempotencyError } from '../../src/core/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { startPrivateRedis } from './private-server.js';

/** The innermost `cause` of an error. */
function rootCause(error: unknown): unknown {
  let current = error;
  while (current instanceof Error && current.cause !== undefined) current = current.cause;
  return current;
}

describe('the Redis store on a server that goes away', () => {
  it('refuses calls at once while the server is down, rather than queueing them until a reconnect attempt, and recovers by itself', async () => {
    const server = await startPrivateRedis({ persistent: true });
    const store = new RedisStore({ url: server.url });
    try {
      let runs = 0;
      const charge = idempotent(async (_key: string) => ++runs, { store, name: 'reconnect', key: (key) => key });
      assert.equal(await charge('before'), 1);
      await server.stop();
      for (let i = 0; i < 5; i++) {
        await assert.rejects(charge(`down-${i}`), (error: unknown) => {
          assert.ok(isIdempotencyError(error, ErrorCode.STORE_UNAVAILABLE), String(error));
          // Not queued behind the reconnection: ioredis refuses a command it cannot write now.
          assert.match(String(rootCause(error)), /enableOfflineQueue/);
          return true;
        });
      }
      assert.equal(runs, 1, 'nothing ran while the server was down');
      await server.start();
      let answer: number | undefined;
      for (let attempt = 0; answer === undefined; attempt++) {
        try {
          answer = await charge('after');
        } catch (error) {
          if (!isIdempotencyError(error, ErrorCode.STORE_UNAVAILABLE) || attempt >= 200) throw error;
          await sleep(25);
        }
      }
      assert.equal(answer, 2);
      assert.equal(await charge('before'), 1, 'the record from before the outage is replayed');
    } finally {
      await store.close();
      await server.dispose();
    }
  });

  it('lets the event loop turn on every refusal, so a caller that retries at once cannot starve the reconnection', async () => {
    const server = await startPrivateRedis();
    const store = new RedisStore({ url: server.url });
    try {
      const charge = idempotent(async (_key: string) => 1, { store, name: 'starve', key: (key) => key });
      assert.equal(await charge('before'), 1);
      await server.stop();
      await assert.rejects(charge('warm-up')); // the client has seen the connection drop
      let turned = false;
      setImmediate(() => {
        turned = true;
      });
      for (let i = 0; i < 10; i++) await assert.rejects(charge(`down-${i}`));
      // Refused with no I/O, every call would settle in microtasks: timers (ioredis's reconnect
      // among them) and I/O would never run while a caller keeps retrying.
      assert.equal(turned, true, 'the event loop turned while the calls were refused');
    } finally {
      await store.close();
      await server.dispose();
    }
  });
});
