import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CliError, ExitCode } from '../../src/cli/cli-error.js';
import { formatDuration, parseDuration } from '../../src/cli/duration.js';
import { resolveServeConfig } from '../../src/cli/gateway/gateway-config.js';
import { describeStore, parseStoreUrl } from '../../src/cli/store-url.js';

function assertUsage(run: () => unknown, message: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof CliError);
    assert.equal(error.exitCode, ExitCode.usage);
    assert.match(error.message, message);
    return true;
  });
}

describe('parseDuration', () => {
  it('reads ms, s, m, h and d, decimals included', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('2m'), 120_000);
    assert.equal(parseDuration('24h'), 86_400_000);
    assert.equal(parseDuration('7d'), 604_800_000);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration(' 10s '), 10_000);
  });

  it('refuses a number without a unit and suggests one', () => {
    assertUsage(() => parseDuration('30', '--lease'), /--lease: "30" is not a duration \(add a unit: 30s or 30ms\)/);
  });

  it('refuses unknown units, negatives, zero and text', () => {
    for (const bad of ['1y', '-5s', '5 s', 'soon', '', '1e3ms', 's'])
      assertUsage(() => parseDuration(bad), /is not a duration/);
    assertUsage(() => parseDuration('0s'), /must be longer than 0/);
    assertUsage(() => parseDuration('0.0001ms'), /must be longer than 0/);
  });

  it('formats back to the shortest unit', () => {
    assert.equal(formatDuration(86_400_000), '1d');
    assert.equal(formatDuration(30_000), '30s');
    assert.equal(formatDuration(1500), '1.5s');
    assert.equal(formatDuration(250), '250ms');
  });
});

describe('parseStoreUrl', () => {
  it('reads every kind of store, with its own option', () => {
    assert.deepEqual(parseStoreUrl('memory:'), { kind: 'memory' });
    assert.deepEqual(parseStoreUrl('sqlite:./idem.db'), { kind: 'sqlite', path: './idem.db' });
    assert.deepEqual(parseStoreUrl('sqlite:///var/lib/idem.db'), { kind: 'sqlite', path: '/var/lib/idem.db' });
    assert.deepEqual(parseStoreUrl('sqlite::memory:'), { kind: 'sqlite', path: ':memory:' });
    assert.deepEqual(parseStoreUrl('sqlite:./idem.db?table=api_keys'), {
      kind: 'sqlite',
      path: './idem.db',
      table: 'api_keys',
    });
    assert.deepEqual(parseStoreUrl('postgres://app:pw@db:5432/app?table=idem_api&sslmode=require'), {
      kind: 'postgres',
      url: 'postgres://app:pw@db:5432/app?sslmode=require',
      table: 'idem_api',
    });
    assert.deepEqual(parseStoreUrl('postgresql://db/app'), { kind: 'postgres', url: 'postgresql://db/app' });
    assert.deepEqual(parseStoreUrl('redis://127.0.0.1:6379/2?prefix=api:'), {
      kind: 'redis',
      url: 'redis://127.0.0.1:6379/2',
      prefix: 'api:',
    });
    assert.deepEqual(parseStoreUrl('rediss://cache:6380'), { kind: 'redis', url: 'rediss://cache:6380' });
    assert.deepEqual(parseStoreUrl('mariadb://root@db:3306/app?table=t'), {
      kind: 'mysql',
      url: 'mysql://root@db:3306/app',
      table: 't',
    });
  });

  it('refuses unknown kinds, and explains how to name a file', () => {
    assertUsage(() => parseStoreUrl('mongodb://x/y'), /not a store URL I know: use sqlite:.*memory:/);
    assertUsage(() => parseStoreUrl('./data/idem.sqlite'), /write sqlite:\.\/data\/idem\.sqlite/);
    assertUsage(() => parseStoreUrl(''), /--store is empty/);
  });

  it('refuses stores with missing parts or stray options', () => {
    assertUsage(() => parseStoreUrl('sqlite:'), /names no file/);
    assertUsage(() => parseStoreUrl('sqlite:./x.db?prefix=a'), /unknown option \?prefix=/);
    assertUsage(() => parseStoreUrl('memory:/tmp/x'), /takes no path/);
    assertUsage(() => parseStoreUrl('postgres://'), /names no host|not a valid postgres URL/);
    assertUsage(() => parseStoreUrl('redis://127.0.0.1?prefix='), /\?prefix= is empty/);
  });

  it('hides passwords when describing a store', () => {
    assert.equal(describeStore(parseStoreUrl('postgres://app:secret@db/app')), 'postgres://app:***@db/app');
    assert.equal(describeStore(parseStoreUrl('sqlite:./idem.db')), 'sqlite:./idem.db');
  });
});

describe('resolveServeConfig', () => {
  it('fills the documented defaults', () => {
    const config = resolveServeConfig({ upstream: 'http://127.0.0.1:3000' });
    assert.equal(config.port, 8080);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.store, 'sqlite:./idem.db');
    assert.deepEqual(config.methods, ['POST', 'PATCH']);
    assert.equal(config.retentionMs, 86_400_000);
    assert.equal(config.leaseMs, 30_000);
    assert.equal(config.maxBodyBytes, 1024 * 1024);
    assert.equal(config.upstreamCheck, true);
    assert.equal(config.required, false);
    assert.equal(config.anonymous, 'refuse');
    assert.equal(config.scopeHeaders, undefined, "the HTTP layer's callerScope() default");
    assert.equal(config.scopeCookies, undefined);
    assert.equal(config.headersTimeoutMs, 10_000);
    assert.equal(config.requestTimeoutMs, 60_000);
    assert.equal(config.maxConnections, 4096);
  });

  it('lets one timeout default give way to the other one given', () => {
    const short = resolveServeConfig({ upstream: 'http://x', requestTimeout: '5s' });
    assert.deepEqual([short.headersTimeoutMs, short.requestTimeoutMs], [5000, 5000]);
    const long = resolveServeConfig({ upstream: 'http://x', headersTimeout: '90s' });
    assert.deepEqual([long.headersTimeoutMs, long.requestTimeoutMs], [90_000, 90_000]);
  });

  it('reads scope headers and cookies from repeated flags, comma lists or JSON arrays', () => {
    const flags = resolveServeConfig({ upstream: 'http://x', scopeHeaders: ['X-Tenant', 'x-user,x-org'] });
    assert.deepEqual(flags.scopeHeaders, ['x-tenant', 'x-user', 'x-org']);
    const file = resolveServeConfig({}, { upstream: 'http://x', scopeCookies: ['sid'], anonymous: 'shared' });
    assert.deepEqual(file.scopeCookies, ['sid']);
    assert.equal(file.anonymous, 'shared');
    assertUsage(
      () => resolveServeConfig({ upstream: 'http://x', scopeCookies: ['s id'] }),
      /--scope-cookie: "s id" is not a cookie name/,
    );
  });

  it('lets flags win over the config file', () => {
    const config = resolveServeConfig(
      { port: '9000', lease: '10s' },
      { upstream: 'http://127.0.0.1:3000', port: 7000, lease: '1m', methods: ['post', 'put'], maxBody: '512kb' },
    );
    assert.equal(config.port, 9000);
    assert.equal(config.leaseMs, 10_000);
    assert.deepEqual(config.methods, ['POST', 'PUT']);
    assert.equal(config.maxBodyBytes, 512 * 1024);
  });

  it('names the source of a bad value', () => {
    assertUsage(
      () => resolveServeConfig({}, { upstream: 'http://x', lease: 30 }),
      /"lease" in the config file must be a duration string/,
    );
    assertUsage(() => resolveServeConfig({ upstream: 'http://x', lease: '30' }), /--lease: "30" is not a duration/);
    assertUsage(() => resolveServeConfig({ upstream: 'http://x', lease: '50ms' }), /--lease must be at least 100ms/);
  });
});
