import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import type { ClaimInput } from '../../src/core/store.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { clusterNode, dropClusterStore, dropStore, prefixOf, redisUrl } from './redis.factory.js';

const HOUR_MS = 3_600_000;
const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);

interface Server {
  name: string;
  /** A client that reaches every key (a Cluster client on the Cluster). */
  client: Redis | Cluster;
  drop(namespace: string): Promise<void>;
}

const single: Server = {
  name: 'redis',
  client: new Redis(redisUrl, { connectTimeout: 5000, commandTimeout: 5000, maxRetriesPerRequest: 1 }),
  drop: dropStore,
};
const servers: Server[] = [single];
if (clusterNode !== undefined) {
  const [host = '127.0.0.1', port = '7101'] = clusterNode.split(':');
  const cluster = new Cluster([{ host, port: Number(port) }], {
    redisOptions: { connectTimeout: 5000, commandTimeout: 5000, maxRetriesPerRequest: 1 },
  });
  cluster.on('error', () => {});
  servers.push({ name: 'redis cluster', client: cluster, drop: dropClusterStore });
}

const dropped: [Server, string][] = [];
after(async () => {
  for (const [server, namespace] of dropped) await server.drop(namespace);
  for (const server of servers) server.client.disconnect();
});

function claimInput(key: string, token: string, nowMs: number, over: Partial<ClaimInput> = {}): ClaimInput {
  return {
    key,
    fingerprint: 'fp',
    token,
    nowMs,
    leaseExpiresAtMs: nowMs + 30_000,
    expiresAtMs: nowMs + HOUR_MS,
    ...over,
  };
}

function isCode(code: ErrorCode) {
  return (error: unknown) => {
    assert.ok(isIdempotencyError(error, code), `expected ${code}, got ${String(error)}`);
    return true;
  };
}

for (const server of servers) {
  describe(`${server.name} store: journals`, () => {
    /** A store on a fresh prefix, dropped after the tests, and that prefix. */
    function freshStore(): { store: RedisStore; prefix: string } {
      const namespace = `j_${randomBytes(5).toString('hex')}`;
      dropped.push([server, namespace]);
      const prefix = prefixOf(namespace);
      return { store: new RedisStore({ client: server.client, prefix }), prefix };
    }

    /** A run claimed by `token` with entries 0 .. count-1 appended. */
    async function startRun(store: RedisStore, key: string, token: string, t: number, count = 1): Promise<void> {
      assert.equal((await store.claim(claimInput(key, token, t))).claimed, true);
      for (let seq = 0; seq < count; seq += 1) {
        assert.equal(await store.append({ key, token, seq, data: bytes(seq), nowMs: t }), true, `seq ${seq}`);
      }
    }

    it("keeps a run's entries in its record's hash, so they share its slot and its TTL", async () => {
      const { store, prefix } = freshStore();
      const t = Date.now();
      await store.claim(claimInput('run', 'a', t, { expiresAtMs: t + 60_000 }));
      assert.equal(await store.append({ key: 'run', token: 'a', seq: 0, data: bytes(1), nowMs: t }), true);
      assert.equal(await server.client.type(`${prefix}{run}`), 'hash');
      assert.equal(await server.client.type(`${prefix}runs`), 'zset');
      assert.ok((await server.client.pttl(`${prefix}{run}`)) > 55_000);

      // Raising the record's retention raises its entries' with it: they are in the same key.
      const extension = { key: 'run', token: 'a', nowMs: t, leaseExpiresAtMs: t + 60_000 };
      assert.equal(await store.extend({ ...extension, expiresAtMs: t + HOUR_MS }), true);
      assert.ok((await server.client.pttl(`${prefix}{run}`)) > HOUR_MS - 5000);
      const result = bytes(7);
      assert.equal(
        await store.complete({ key: 'run', token: 'a', result, nowMs: t, expiresAtMs: t + 2 * HOUR_MS }),
        true,
      );
      assert.ok((await server.client.pttl(`${prefix}{run}`)) > 2 * HOUR_MS - 5000);
      assert.deepEqual(await store.entries('run'), [{ seq: 0, data: bytes(1), atMs: t }]);

      // One hash: the record's 10 fields and the entry. The record reads as before.
      assert.equal(await server.client.hlen(`${prefix}{run}`), 11);
      const record = await store.get('run');
      assert.deepEqual([record?.state, record?.result], ['completed', result]);
      assert.deepEqual(
        (await store.list()).records.map((listed) => listed.key),
        ['run'],
      );

      // A claim over an expired record drops its entries at once, with it (one DEL).
      assert.equal((await store.claim(claimInput('run', 'b', t + 3 * HOUR_MS))).claimed, true);
      assert.deepEqual(await store.entries('run'), []);
    });

    it('refuses a seq that is not a whole number from 0 up, which would name no entry', async () => {
      const { store } = freshStore();
      const t = Date.now();
      await store.claim(claimInput('run', 'a', t));
      for (const seq of [-1, 1.5, Number.NaN, 2 ** 53]) {
        const input = { key: 'run', token: 'a', seq, data: bytes(), nowMs: t };
        await assert.rejects(store.append(input), isCode(ErrorCode.INVALID_OPTIONS), String(seq));
      }
      assert.deepEqual(await store.entries('run'), []);
    });

    it('skips index members without a run; removes those whose record is gone, keeps those whose record stands', async () => {
      const { store, prefix } = freshStore();
      const t = Date.now();
      // As a crash leaves them on a Cluster: the key indexed, its append never made, or its record
      // gone since (released, deleted, dropped by Redis).
      await server.client.zadd(`${prefix}runs`, 0, 'gone', 0, 'unstarted');
      await store.claim(claimInput('unstarted', 'a', t));
      await startRun(store, 'run', 'a', t);
      assert.deepEqual(await store.runs(), { keys: ['run'], nextCursor: undefined });
      assert.deepEqual(await server.client.zrange(`${prefix}runs`, 0, -1), ['run', 'unstarted']);
      // Once its record goes, the member goes too.
      await store.release('unstarted', 'a');
      await store.runs();
      assert.deepEqual(await server.client.zrange(`${prefix}runs`, 0, -1), ['run']);
    });

    it('pages through runs with limit 1, one run a page and no empty last page, skipping what is not due', async () => {
      const { store } = freshStore();
      const t = Date.now();
      const keys = Array.from({ length: 12 }, (_, i) => `run-${String(i).padStart(2, '0')}`);
      for (const key of keys) await startRun(store, key, 'a', t);
      // Every third run holds a long lease: not due.
      for (const key of keys.filter((_, i) => i % 3 === 0)) {
        await store.extend({ key, token: 'a', nowMs: t, leaseExpiresAtMs: t + HOUR_MS, expiresAtMs: t });
      }
      const due = keys.filter((_, i) => i % 3 !== 0);
      for (const [dueBy, expected] of [
        [undefined, keys],
        [t + 60_000, due],
      ] as const) {
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store.runs({
            limit: 1,
            ...(dueBy === undefined ? {} : { dueBy }),
            ...(cursor ? { cursor } : {}),
          });
          assert.equal(page.keys.length, 1);
          seen.push(...page.keys);
          cursor = page.nextCursor;
          pages += 1;
        } while (cursor !== undefined && pages < 100);
        assert.deepEqual(seen, expected);
      }
      const [first, second] = [await store.runs({ limit: 5 }), await store.runs({ limit: 1000 })];
      assert.deepEqual(first.keys, keys.slice(0, 5));
      assert.deepEqual(second, { keys, nextCursor: undefined });
    });

    it('refuses a runs cursor it did not hand out', async () => {
      const { store } = freshStore();
      await assert.rejects(store.runs({ cursor: 'not-a-cursor' }), isCode(ErrorCode.INVALID_OPTIONS));
    });

    it('keeps the journal of a key without a hash tag (one that starts with "}") with its record', async () => {
      const { store } = freshStore();
      const t = Date.now();
      for (const key of ['}run', '{x}', 'a}b{c']) {
        await startRun(store, key, 'a', t, 2);
        assert.deepEqual(
          (await store.entries(key)).map((entry) => entry.seq),
          [0, 1],
          key,
        );
      }
      assert.deepEqual((await store.runs()).keys.sort(), ['a}b{c', '{x}', '}run'].sort());
    });
  });
}
