import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import type { ClaimInput } from '../../src/core/store.js';
import { type RedisLike, RedisStore } from '../../src/stores/redis/index.js';
import { runStoreConformance, StoreScenario } from '../../src/testing/index.js';
import { clusterNode, dropStore, prefixOf, redisUrl } from './redis.factory.js';

const factoryModule = new URL('./redis.factory.ts', import.meta.url).href;
runStoreConformance({ name: 'redis', factoryModule });

const noCluster = 'set IDEM_REDIS_CLUSTER=host:port of a Redis Cluster node to run the suite on a Cluster';
runStoreConformance({
  name: 'redis cluster',
  factoryModule,
  createExport: 'createClusterStore',
  dropExport: 'dropClusterStore',
  ...(clusterNode === undefined
    ? { skip: Object.fromEntries(Object.keys(StoreScenario).map((scenario) => [scenario, noCluster])) }
    : {}),
});

const HOUR_MS = 3_600_000;
const admin = new Redis(redisUrl, { connectTimeout: 5000, commandTimeout: 5000, maxRetriesPerRequest: 1 });
const namespaces: string[] = [];
after(async () => {
  for (const namespace of namespaces) await dropStore(namespace);
  admin.disconnect();
});

/** A fresh key prefix, whose keys are deleted after the tests. */
function freshPrefix(): string {
  const namespace = `r_${randomBytes(5).toString('hex')}`;
  namespaces.push(namespace);
  return prefixOf(namespace);
}

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

describe('redis store', () => {
  it('refuses a prefix with characters that are not letters, digits, _, :, - or .', () => {
    for (const prefix of ['', 'idem*', 'a{b', 'a}b', 'a b', 'a?', 'a[b]', 'x'.repeat(101)]) {
      assert.throws(() => new RedisStore({ client: admin, prefix }), isCode(ErrorCode.INVALID_OPTIONS), prefix);
    }
    assert.doesNotThrow(() => new RedisStore({ client: admin, prefix: 'app-1.billing:idem_v2:' }));
  });

  it('refuses options that give both a client and a url, or neither', () => {
    assert.throws(() => new RedisStore({ client: admin, url: redisUrl }), isCode(ErrorCode.INVALID_OPTIONS));
    assert.throws(() => new RedisStore({}), isCode(ErrorCode.INVALID_OPTIONS));
  });

  it('keeps each record in one hash at <prefix>{<key>} that Redis drops when retention ends', async () => {
    const prefix = freshPrefix();
    const store = new RedisStore({ client: admin, prefix });
    const t = Date.now();
    await store.claim(claimInput('order-1', 'a', t, { expiresAtMs: t + 60_000 }));
    assert.equal(await admin.type(`${prefix}{order-1}`), 'hash');
    const claimTtlMs = await admin.pttl(`${prefix}{order-1}`);
    assert.ok(claimTtlMs > 55_000 && claimTtlMs <= 60_000, `TTL after claim ${claimTtlMs}`);

    await store.complete({
      key: 'order-1',
      token: 'a',
      result: new Uint8Array([1]),
      nowMs: t,
      expiresAtMs: t + HOUR_MS,
    });
    const completeTtlMs = await admin.pttl(`${prefix}{order-1}`);
    assert.ok(completeTtlMs > HOUR_MS - 5000 && completeTtlMs <= HOUR_MS, `TTL after complete ${completeTtlMs}`);

    await store.claim(claimInput('short', 'a', t, { expiresAtMs: t + 50 }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(await admin.exists(`${prefix}{short}`), 0);
  });

  it('raises the TTL with the retention when a lease is extended, and never lowers it', async () => {
    const prefix = freshPrefix();
    const store = new RedisStore({ client: admin, prefix });
    const t = Date.now();
    await store.claim(claimInput('long-run', 'a', t, { expiresAtMs: t + 60_000, leaseExpiresAtMs: t + 1000 }));
    const extension = { key: 'long-run', token: 'a', nowMs: t, leaseExpiresAtMs: t + 2000 };
    assert.equal(await store.extend({ ...extension, expiresAtMs: t + HOUR_MS }), true);
    const raisedTtlMs = await admin.pttl(`${prefix}{long-run}`);
    assert.ok(raisedTtlMs > HOUR_MS - 5000 && raisedTtlMs <= HOUR_MS, `TTL after extend ${raisedTtlMs}`);
    assert.equal(await store.extend({ ...extension, expiresAtMs: t + 60_000 }), true);
    const keptTtlMs = await admin.pttl(`${prefix}{long-run}`);
    assert.ok(keptTtlMs > HOUR_MS - 5000, `TTL after an extension asking for less ${keptTtlMs}`);
    assert.equal((await store.get('long-run'))?.expiresAtMs, t + HOUR_MS);
  });

  it('keeps keys with braces and non-ASCII characters apart and returns them exactly', async () => {
    const store = new RedisStore({ client: admin, prefix: freshPrefix() });
    const t = Date.now();
    const keys = ['a}b{c', '{x}', 'ключ-🔑', 'a', 'a}'];
    for (const key of keys) assert.equal((await store.claim(claimInput(key, `t-${key}`, t))).claimed, true, key);
    for (const key of keys) assert.equal((await store.get(key))?.token, `t-${key}`, key);
    const listed = (await store.list({ limit: 100 })).records.map((record) => record.key).sort();
    assert.deepEqual(listed, [...keys].sort());
  });

  it('lists every record across pages of one, even when SCAN returns them in large batches', async () => {
    const store = new RedisStore({ client: admin, prefix: freshPrefix() });
    const t = Date.now();
    const keys = Array.from({ length: 30 }, (_, i) => `k-${i}`);
    await Promise.all(keys.map((key) => store.claim(claimInput(key, 'a', t))));
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store.list({ limit: 1, ...(cursor === undefined ? {} : { cursor }) });
      assert.ok(page.records.length <= 1);
      seen.push(...page.records.map((record) => record.key));
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor !== undefined && pages < 100);
    assert.deepEqual([...new Set(seen)].sort(), [...keys].sort());
    assert.equal(pages, keys.length, 'no empty page after the last record');
  });

  it('refuses a list cursor it did not hand out', async () => {
    const store = new RedisStore({ client: admin, prefix: freshPrefix() });
    await assert.rejects(store.list({ cursor: 'not-a-cursor' }), isCode(ErrorCode.INVALID_OPTIONS));
    await assert.rejects(store.list({ limit: 0 }), isCode(ErrorCode.INVALID_OPTIONS));
  });

  it('runs its scripts again after Redis forgets them (SCRIPT FLUSH)', async () => {
    const store = new RedisStore({ client: admin, prefix: freshPrefix() });
    const t = Date.now();
    await store.claim(claimInput('k', 'a', t));
    await admin.script('FLUSH');
    assert.equal(
      await store.complete({ key: 'k', token: 'a', result: new Uint8Array([9]), nowMs: t, expiresAtMs: t + HOUR_MS }),
      true,
    );
    assert.deepEqual([...((await store.get('k'))?.result ?? [])], [9]);
  });

  it('calls a client factory once, on first use, and never closes a client it was given', async () => {
    let calls = 0;
    const store = new RedisStore({
      client: () => {
        calls += 1;
        return admin;
      },
      prefix: freshPrefix(),
    });
    assert.equal(calls, 0);
    await store.get('a');
    await store.get('b');
    assert.equal(calls, 1);
    await store.close();
    assert.equal(await admin.ping(), 'PONG');
  });

  it('reports a client factory that throws as STORE_UNAVAILABLE and tries it again on the next call', async () => {
    let calls = 0;
    const store = new RedisStore({
      client: (): RedisLike => {
        calls += 1;
        if (calls === 1) throw new Error('no connection yet');
        return admin;
      },
      prefix: freshPrefix(),
    });
    await assert.rejects(store.get('a'), isCode(ErrorCode.STORE_UNAVAILABLE));
    assert.equal(await store.get('a'), null);
  });

  it('fails with STORE_UNAVAILABLE within a second when nothing listens on the port', async () => {
    const store = new RedisStore({ url: 'redis://127.0.0.1:1', prefix: freshPrefix() });
    const started = Date.now();
    await assert.rejects(store.claim(claimInput('k', 'a', started)), isCode(ErrorCode.STORE_UNAVAILABLE));
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    await store.close();
    await store.close();
  });

  it('fails with STORE_UNAVAILABLE after commandTimeoutMs when the server accepts but never answers', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    const store = new RedisStore({ url: `redis://127.0.0.1:${port}`, prefix: freshPrefix(), commandTimeoutMs: 300 });
    try {
      const started = Date.now();
      await assert.rejects(store.claim(claimInput('k', 'a', started)), isCode(ErrorCode.STORE_UNAVAILABLE));
      const tookMs = Date.now() - started;
      assert.ok(tookMs >= 250 && tookMs < 2000, `took ${tookMs} ms`);
    } finally {
      await store.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('closes the client it opened itself, so later calls are refused with STORE_CLOSED', async () => {
    const store = new RedisStore({ url: redisUrl, prefix: freshPrefix() });
    assert.equal(await store.get('k'), null);
    await store.close();
    await assert.rejects(store.get('k'), isCode(ErrorCode.STORE_CLOSED));
  });
});
