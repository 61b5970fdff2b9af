import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import type { ClaimInput } from '../../src/core/store.js';
import { type RedisLike, RedisStore } from '../../src/stores/redis/index.js';
import { EXTEND_MARKED } from '../../src/stores/redis/scripts.js';
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

    /** The server's client, calling `before` with each command the store sends before sending it. */
    function watched(before: (command: string, args: (string | Buffer | number)[]) => Promise<void> | void): RedisLike {
      const { client } = server;
      return {
        callBuffer: async (command, ...args) => {
          await before(command, args);
          return client.callBuffer(command, ...args);
        },
        ...(client instanceof Cluster ? { nodes: (role) => client.nodes(role) } : {}),
      };
    }

    /** A store on a fresh prefix whose client counts the commands the store sends, by name. */
    function countedStore(): { store: RedisStore; prefix: string; sent: Map<string, number> } {
      const { prefix } = freshStore();
      const sent = new Map<string, number>();
      const client = watched((command) => {
        sent.set(command, (sent.get(command) ?? 0) + 1);
      });
      return { store: new RedisStore({ client, prefix }), prefix, sent };
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
      // Once its record goes, the member goes too, from both indexes.
      await server.client.zadd(`${prefix}due`, 0, 'unstarted');
      await store.release('unstarted', 'a');
      await store.runs();
      assert.deepEqual(await server.client.zrange(`${prefix}runs`, 0, -1), ['run']);
      assert.deepEqual(await server.client.zrange(`${prefix}due`, 0, -1), ['run']);
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

    it('reads only the runs that may be due: completed runs leave the due index, long leases are read again when they end', async () => {
      const { store, prefix, sent } = countedStore();
      const t = Date.now();
      const dueBy = t + 60_000;
      const result = bytes(1);
      const named = (name: string, count: number) => Array.from({ length: count }, (_, i) => `${name}-${i}`);
      const [completed, parked, due] = [named('completed', 40), named('parked', 5), named('due', 5)];
      for (const key of [...completed, ...parked, ...due]) await startRun(store, key, 'a', t);
      for (const key of completed) {
        assert.equal(await store.complete({ key, token: 'a', result, nowMs: t, expiresAtMs: t + HOUR_MS }), true);
      }
      // Parked: the lease now ends long after dueBy (a later lease end leaves the index as it was).
      for (const key of parked) {
        const extension = { key, token: 'a', nowMs: t, expiresAtMs: t + HOUR_MS };
        assert.equal(await store.extend({ ...extension, leaseExpiresAtMs: t + HOUR_MS / 2 }), true);
      }

      assert.deepEqual((await store.runs({ dueBy })).keys.sort(), due.sort());
      // The poll removed the completed runs and scored the parked ones by their lease end.
      const members = await server.client.zrange(`${prefix}due`, 0, -1, 'WITHSCORES');
      const scores = new Map<string, number>();
      for (let i = 0; i < members.length; i += 2) scores.set(members[i] ?? '', Number(members[i + 1]));
      assert.deepEqual([...scores.keys()].sort(), [...due, ...parked].sort());
      for (const key of parked) assert.equal(scores.get(key), t + HOUR_MS / 2, key);

      // The next poll reads the records of the due runs only (one HMGET each), not of all 50 kept.
      sent.clear();
      assert.deepEqual((await store.runs({ dueBy })).keys.sort(), due.sort());
      assert.equal(sent.get('HMGET'), due.length);
      assert.equal(sent.get('ZRANGEBYSCORE'), 1);
      // Every run is still listed without dueBy.
      assert.equal((await store.runs({ limit: 1000 })).keys.length, 50);
      // Once the parked leases end, the parked runs are due again.
      const later = t + HOUR_MS / 2;
      assert.deepEqual((await store.runs({ dueBy: later })).keys.sort(), [...due, ...parked].sort());
    });

    it('finds a run whose due score was raised once its lease is cut short, or a later lease ends', async () => {
      const { store, prefix } = freshStore();
      const t = Date.now();
      await startRun(store, 'sleeping', 'a', t);
      await startRun(store, 'cut', 'a', t);
      for (const key of ['sleeping', 'cut']) {
        assert.equal(
          await store.extend({ key, token: 'a', nowMs: t, leaseExpiresAtMs: t + 600_000, expiresAtMs: t + HOUR_MS }),
          true,
        );
      }
      // A poll scores both by their lease end: no poll before then reads them.
      assert.deepEqual((await store.runs({ dueBy: t + 60_000 })).keys, []);
      assert.equal(Number(await server.client.zscore(`${prefix}due`, 'cut')), t + 600_000);
      // `resume` cuts one lease short: the score comes down with it, so the run is due at once.
      const cut = { key: 'cut', token: 'a', nowMs: t + 1000, leaseExpiresAtMs: t + 1000, expiresAtMs: t + HOUR_MS };
      assert.equal(await store.extend(cut), true);
      const cutScore = Number(await server.client.zscore(`${prefix}due`, 'cut'));
      assert.ok(cutScore <= t + 1000, `score ${cutScore}, lease end ${t + 1000}`);
      assert.deepEqual((await store.runs({ dueBy: t + 1000 })).keys, ['cut']);
      assert.deepEqual(await server.client.hget(`${prefix}{cut}`, 'lowering'), null, 'no mark is left');
      // The other's score is a lower bound: its lease, extended again since, ends later still.
      const extension = { key: 'sleeping', token: 'a', nowMs: t, expiresAtMs: t + HOUR_MS };
      assert.equal(await store.extend({ ...extension, leaseExpiresAtMs: t + 900_000 }), true);
      assert.deepEqual((await store.runs({ dueBy: t + 600_000 })).keys, ['cut']);
      assert.equal(Number(await server.client.zscore(`${prefix}due`, 'sleeping')), t + 900_000);
      assert.deepEqual((await store.runs({ dueBy: t + 900_000 })).keys, ['cut', 'sleeping']);
    });

    it('puts a completed run back in the due index when it is reopened and its entry 0 appended again', async () => {
      const { store, prefix } = freshStore();
      const t = Date.now();
      await startRun(store, 'run', 'a', t);
      assert.equal(
        await store.complete({ key: 'run', token: 'a', result: bytes(1), nowMs: t, expiresAtMs: t + HOUR_MS }),
        true,
      );
      assert.deepEqual((await store.runs({ dueBy: t + 60_000 })).keys, []);
      assert.equal(await server.client.zscore(`${prefix}due`, 'run'), null);
      const reopen = {
        key: 'run',
        expectedToken: 'a',
        token: 'b',
        nowMs: t,
        leaseExpiresAtMs: t + 30_000,
        expiresAtMs: t + HOUR_MS,
      };
      assert.equal(await store.reopen(reopen), true);
      assert.equal(await store.append({ key: 'run', token: 'b', seq: 0, data: bytes(2), nowMs: t }), true);
      assert.deepEqual((await store.runs({ dueBy: t + 60_000 })).keys, ['run']);
    });

    it('keeps the due score at most the lease end when an extend lowers the lease while a poll raises the score', async () => {
      const { store, prefix } = freshStore();
      const t = Date.now();
      await startRun(store, 'run', 'a', t);
      const parked = { key: 'run', token: 'a', nowMs: t, leaseExpiresAtMs: t + 600_000, expiresAtMs: t + HOUR_MS };
      assert.equal(await store.extend(parked), true);

      // The extend that cuts the lease stops before its last script (on a Cluster: after marking the
      // record and lowering the score; on a single server its one script has run) until released.
      let release = () => {};
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      let reachLast = () => {};
      const reachedLast = new Promise<void>((resolve) => {
        reachLast = resolve;
      });
      const cutter = new RedisStore({
        prefix,
        client: watched(async (command, args) => {
          if (command === 'EVALSHA' && args[0] === EXTEND_MARKED.sha1) {
            reachLast();
            await released;
          }
        }),
      });
      let cut: Promise<boolean> | undefined;
      // The poll has read the long lease; just before it raises the score to it, the cut begins.
      const poller = new RedisStore({
        prefix,
        client: watched(async (command, args) => {
          if (command !== 'ZADD' || !args.includes('GT') || cut !== undefined) return;
          cut = cutter.extend({ ...parked, nowMs: t + 1000, leaseExpiresAtMs: t + 1000 });
          await Promise.race([cut, reachedLast]);
        }),
      });
      assert.deepEqual((await poller.runs({ dueBy: t + 60_000 })).keys, []);
      assert.notEqual(cut, undefined, 'the poll raised the score');
      release();
      assert.equal(await cut, true);
      const score = Number(await server.client.zscore(`${prefix}due`, 'run'));
      assert.ok(score <= t + 1000, `score ${score}, lease end ${t + 1000}: the poll's raise stood`);
      assert.deepEqual((await store.runs({ dueBy: t + 1000 })).keys, ['run']);
    });

    it('does not raise the due score of a run whose lease an unfinished extend is lowering', async () => {
      const { store, prefix } = freshStore();
      const t = Date.now();
      await startRun(store, 'run', 'a', t);
      // As an extend that lowers the lease leaves the record on a Cluster if it stops after its first step.
      await server.client.hset(`${prefix}{run}`, 'lowering', `${t + 1000}:nonce`);
      await server.client.zadd(`${prefix}due`, 0, 'run');
      assert.deepEqual((await store.runs({ dueBy: t + 10_000 })).keys, []);
      assert.equal(Number(await server.client.zscore(`${prefix}due`, 'run')), 0);
    });

    it('pages through due runs that share one score past a batch of the due index', async () => {
      const { store } = freshStore();
      const t = Date.now();
      // Claimed at one time, so one lease end (a single server's scores) or 0 (a Cluster's) for all.
      const keys = Array.from({ length: 150 }, (_, i) => `run-${String(i).padStart(3, '0')}`);
      await Promise.all(keys.map((key) => startRun(store, key, 'a', t)));
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.runs({ dueBy: t + 60_000, limit: 50, ...(cursor ? { cursor } : {}) });
        seen.push(...page.keys);
        cursor = page.nextCursor;
      } while (cursor !== undefined && seen.length <= keys.length);
      assert.deepEqual(seen, keys);
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
