import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/stores/redis/index.js';
import { freePort, waitForPort } from './private-server.js';

/** The Redis store reads the server's eviction policy once, at first use, and warns when it can drop records. */

describe('redis store: eviction policy check at start-up', () => {
  let server: ChildProcess | undefined;
  let port = 0;
  let admin: Redis | undefined;
  before(async () => {
    // A private server: the shared one's configuration is never changed.
    port = await freePort();
    server = spawn(
      'redis-server',
      [
        ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        ...['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru'],
      ],
      { stdio: 'ignore' },
    );
    await waitForPort(port);
    admin = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
  });
  after(() => {
    admin?.disconnect();
    server?.kill();
  });

  /** The warnings a new store on the private server gives over a ping, a claim and another ping. */
  async function warningsOf(serverPort: number): Promise<string[]> {
    const warnings: string[] = [];
    const store = new RedisStore({ url: `redis://127.0.0.1:${serverPort}`, onWarning: (m) => warnings.push(m) });
    try {
      await store.ping();
      const nowMs = Date.now();
      const claimed = await store.claim({
        key: randomUUID(),
        fingerprint: 'fp',
        token: 't',
        nowMs,
        leaseExpiresAtMs: nowMs + 30_000,
        expiresAtMs: nowMs + 60_000,
      });
      assert.equal(claimed.claimed, true, 'the store works whatever the policy');
      await store.ping();
    } finally {
      await store.close();
    }
    return warnings;
  }

  it('warns once when the policy is allkeys-lru, saying to set noeviction', async () => {
    const warnings = await warningsOf(port);
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0] ?? '',
      /^\[idem\] \[redis\] the server's maxmemory-policy is allkeys-lru: .*evict Idem's records/,
    );
    assert.match(warnings[0] ?? '', /Set maxmemory-policy to noeviction/);
  });

  it('warns when the policy is volatile-lru too, since every record has a TTL', async () => {
    await admin?.config('SET', 'maxmemory-policy', 'volatile-lru');
    const warnings = await warningsOf(port);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /maxmemory-policy is volatile-lru: .*volatile-\* policies evict them too/);
  });

  it('says nothing when the policy is noeviction', async () => {
    await admin?.config('SET', 'maxmemory-policy', 'noeviction');
    assert.deepEqual(await warningsOf(port), []);
  });

  it('refuses an onWarning that is not a function', () => {
    assert.throws(
      () => new RedisStore({ url: `redis://127.0.0.1:${port}`, onWarning: 'log' as never }),
      /onWarning must be a function, got string/,
    );
  });
});

describe('redis store: a server that refuses CONFIG', () => {
  let server: ChildProcess | undefined;
  let port = 0;
  before(async () => {
    // As managed Redis does: CONFIG renamed away, so the check cannot read the policy.
    port = await freePort();
    server = spawn(
      'redis-server',
      [
        ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        ...['--maxmemory-policy', 'allkeys-lru', '--rename-command', 'CONFIG', ''],
      ],
      { stdio: 'ignore' },
    );
    await waitForPort(port);
  });
  after(() => {
    server?.kill();
  });

  it('skips the check silently and works as usual', async () => {
    const warnings: string[] = [];
    const store = new RedisStore({ url: `redis://127.0.0.1:${port}`, onWarning: (m) => warnings.push(m) });
    try {
      await store.ping();
      assert.equal(await store.get(randomUUID()), null);
    } finally {
      await store.close();
    }
    assert.deepEqual(warnings, []);
  });
});
