import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { send } from '../../src/testing/http-client.js';
import { newKey, runIdem, startIdem, TestUpstream, tempDir } from './helpers.js';

const directory = tempDir();
after(() => rmSync(directory, { recursive: true, force: true }));

describe('idem serve scopes keys by the caller', () => {
  const upstream = new TestUpstream();
  before(() => upstream.start());
  after(() => upstream.close());

  const charge = (url: string, key: string, headers: Record<string, string>) =>
    send(`${url}/charges`, { body: { amount: 12 }, headers: { 'idempotency-key': key, ...headers } });

  it('by default refuses a keyed request without credentials (400 caller-unknown), and tells cookie callers apart', async () => {
    const gateway = await startIdem(['--upstream', upstream.url, '--store', 'memory:']);
    try {
      const before = upstream.hitCount('/charges');
      const key = newKey();
      const anonymous = await charge(gateway.url, key, {});
      assert.equal(anonymous.status, 400);
      assert.equal((anonymous.json as { type: string }).type, 'urn:idem:problem:caller-unknown');
      assert.equal(upstream.hitCount('/charges'), before, 'nothing was forwarded');
      const a = await charge(gateway.url, key, { cookie: 'session=a' });
      const b = await charge(gateway.url, key, { cookie: 'session=b' });
      assert.notEqual(a.text, b.text, 'two cookie callers never share a key');
      assert.equal((await charge(gateway.url, key, { cookie: 'session=a' })).headers['idempotent-replayed'], 'true');
      assert.match(
        gateway.output().stderr,
        /idem: warning: memory: is for development only: .*Use sqlite:, postgres:\/\/, redis:\/\/ or mysql:\/\/ in production\./,
      );
    } finally {
      await gateway.stop();
    }
  });

  it('with --scope-cookie scopes by that cookie alone, and --anonymous pass forwards callers without it unprotected', async () => {
    const gateway = await startIdem([
      '--upstream',
      upstream.url,
      '--store',
      'memory:',
      '--scope-cookie',
      'sid',
      '--anonymous',
      'pass',
    ]);
    try {
      const key = newKey();
      const first = await charge(gateway.url, key, { cookie: 'sid=one; theme=dark' });
      const again = await charge(gateway.url, key, { cookie: 'theme=light; sid=one' });
      assert.equal(again.headers['idempotent-replayed'], 'true', 'other cookies do not change the caller');
      assert.equal(again.text, first.text);
      const other = await charge(gateway.url, key, { cookie: 'sid=two' });
      assert.notEqual(other.text, first.text);
      const before = upstream.hitCount('/charges');
      const bearer = await charge(gateway.url, key, { authorization: 'Bearer x' });
      const bearerAgain = await charge(gateway.url, key, { authorization: 'Bearer x' });
      assert.equal(bearerAgain.headers['idempotent-replayed'], undefined, 'no sid: passed through unprotected');
      assert.notEqual(bearer.text, bearerAgain.text);
      assert.equal(upstream.hitCount('/charges') - before, 2);
    } finally {
      await gateway.stop();
    }
  });

  it('reads scopeHeaders and anonymous from the config file; shared puts every caller without credentials in one scope', async () => {
    const config = join(directory, 'scope.json');
    writeFileSync(
      config,
      JSON.stringify({ upstream: upstream.url, store: 'memory:', scopeHeaders: ['X-Tenant'], anonymous: 'shared' }),
    );
    const gateway = await startIdem(['--config', config]);
    try {
      const key = newKey();
      const tenant = await charge(gateway.url, key, { 'x-tenant': 't1' });
      const otherTenant = await charge(gateway.url, key, { 'x-tenant': 't2' });
      assert.notEqual(tenant.text, otherTenant.text);
      const nobody = await charge(gateway.url, key, { authorization: 'Bearer not-a-scope-header' });
      const nobodyAgain = await charge(gateway.url, key, {});
      assert.equal(nobodyAgain.headers['idempotent-replayed'], 'true', 'callers without X-Tenant share one scope');
      assert.equal(nobodyAgain.text, nobody.text);
    } finally {
      await gateway.stop();
    }
  });

  it('finds a key from the cookie the client sent, as the gateway ran with --scope-cookie', async () => {
    const storeUrl = `sqlite:${join(directory, 'scope-keys.db')}`;
    const gateway = await startIdem(['--upstream', upstream.url, '--store', storeUrl, '--scope-cookie', 'sid']);
    try {
      const key = newKey();
      assert.equal((await charge(gateway.url, key, { cookie: 'sid=abc; theme=dark' })).status, 201);
      const show = (...args: string[]) =>
        runIdem(['keys', 'show', '--store', storeUrl, '--key', key, '--json', ...args]);
      const found = await show('--cookie', 'sid=abc', '--scope-cookie', 'sid');
      assert.equal(found.code, 0, found.stderr);
      assert.equal((JSON.parse(found.stdout) as { state: string }).state, 'completed');
      const defaultScope = await show('--cookie', 'sid=abc', '--cookie', 'theme=dark');
      assert.equal(defaultScope.code, 1, 'without --scope-cookie the default scope (every cookie) is rebuilt');
    } finally {
      await gateway.stop();
    }
  });

  it('says the default scope and the anonymous policy in --help', async () => {
    const help = await runIdem(['serve', '--help']);
    assert.equal(help.code, 0);
    const text = help.stdout.replace(/\s+/g, ' ');
    assert.match(
      text,
      /--scope-header <name>.*authorization, x-api-key, api-key, x-auth-token, x-access-token, else the cookie header/,
    );
    assert.match(text, /--scope-cookie <name>/);
    assert.match(text, /--anonymous <policy>.*refuse.*pass.*shared.*\(default refuse\)/);
    assert.match(text, /--max-connections <n>/);
    assert.match(text, /--headers-timeout <duration>/);
    assert.match(text, /--request-timeout <duration>/);
  });
});
