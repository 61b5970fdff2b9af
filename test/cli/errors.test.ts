import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runIdem, TestUpstream, tempDir } from './helpers.js';

const directory = tempDir();
after(() => rmSync(directory, { recursive: true, force: true }));

/** Every mistake ends in one line on stderr, `idem: ...`, a non-zero exit, and no stack trace. */
async function assertOneLine(args: string[], code: 1 | 2, message: RegExp): Promise<void> {
  const run = await runIdem(args, { timeoutMs: 20_000 });
  assert.equal(run.code, code, `exit code of idem ${args.join(' ')}: ${run.stderr}`);
  const lines = run.stderr.split('\n').filter((line) => line !== '');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${run.stderr}`);
  assert.match(lines[0] as string, /^idem: /);
  assert.match(lines[0] as string, message);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(run.stdout, '');
}

describe('idem reports every mistake in one line with a non-zero exit', () => {
  const upstream = new TestUpstream();
  before(() => upstream.start());
  after(() => upstream.close());
  const serve = (...args: string[]) => ['serve', '--upstream', upstream.url, '--port', '0', ...args];

  it('an unknown flag exits 2', () => assertOneLine(['serve', '--bogus'], 2, /unknown option '--bogus'/));
  it('an unknown command exits 2', () => assertOneLine(['frobnicate'], 2, /unknown command 'frobnicate'/));
  it('a missing --upstream exits 2', () => assertOneLine(['serve'], 2, /--upstream is required/));
  it('an upstream that is not http exits 2', () =>
    assertOneLine(['serve', '--upstream', 'ftp://example.com'], 2, /must be http:\/\/ or https:\/\//));
  it('a duration without a unit exits 2 and suggests one', () =>
    assertOneLine(serve('--lease', '30'), 2, /--lease: "30" is not a duration \(add a unit: 30s or 30ms\)/));
  it('a duration with an unknown unit exits 2', () =>
    assertOneLine(serve('--retention', '1y'), 2, /--retention: "1y" is not a duration; use .*24h/));
  it('a retention no longer than the lease exits 2', () =>
    assertOneLine(serve('--retention', '1s', '--lease', '30s'), 2, /--retention must be longer than --lease/));
  it('a zero duration exits 2', () => assertOneLine(serve('--grace', '0s'), 2, /--grace: "0s" must be longer than 0/));
  it('a port out of range exits 2', () => assertOneLine(serve('--port', '70000'), 2, /--port: "70000" is not a port/));
  it('a safe method in --methods exits 2', () =>
    assertOneLine(serve('--methods', 'POST,GET'), 2, /GET cannot be protected/));
  it('an unknown --policy exits 2', () =>
    assertOneLine(serve('--policy', 'always'), 2, /"always" is not one of default, stripe/));
  it('a --scope-header that is not a header name exits 2', () =>
    assertOneLine(serve('--scope-header', 'x api key'), 2, /--scope-header: "x api key" is not a header name/));
  it('the old --scope-headers flag exits 2 and points to --scope-header', () =>
    assertOneLine(serve('--scope-headers', 'x-api-key'), 2, /unknown option '--scope-headers'.*--scope-header/));
  it('an unknown --anonymous policy exits 2', () =>
    assertOneLine(serve('--anonymous', 'allow'), 2, /--anonymous: "allow" is not one of refuse, pass, shared/));
  it('a --headers-timeout longer than --request-timeout exits 2', () =>
    assertOneLine(
      serve('--headers-timeout', '20s', '--request-timeout', '10s'),
      2,
      /--headers-timeout \(20000ms\) must not be longer than --request-timeout/,
    ));
  it('a bad --max-connections exits 2', () =>
    assertOneLine(serve('--max-connections', 'lots'), 2, /--max-connections: "lots" is not a whole number above 0/));
  it('scopeCookies in the config file that are not a list of names exit 2', () => {
    const path = join(directory, 'cookies.json');
    writeFileSync(path, JSON.stringify({ upstream: upstream.url, scopeCookies: [1] }));
    return assertOneLine(
      ['serve', '--config', path],
      2,
      /"scopeCookies" in the config file must be a comma-separated list/,
    );
  });
  it('a bad --max-body exits 2', () =>
    assertOneLine(serve('--max-body', 'lots'), 2, /--max-body: "lots" is not a size/));
  it('a store URL of an unknown kind exits 2 and lists the kinds', () =>
    assertOneLine(
      serve('--store', 'mongodb://127.0.0.1/x'),
      2,
      /not a store URL I know: use sqlite:.*postgres:.*redis:.*mysql:.*memory:/,
    ));
  it('a bare file name as --store exits 2 and says how to write it', () =>
    assertOneLine(serve('--store', './idem.db'), 2, /to use that SQLite file, write sqlite:\.\/idem\.db/));
  it('sqlite: without a file exits 2', () => assertOneLine(serve('--store', 'sqlite:'), 2, /names no file/));
  it('a postgres URL without a host exits 2', () => assertOneLine(serve('--store', 'postgres://'), 2, /postgres/));
  it('a bad table name in the store URL exits 2', () =>
    assertOneLine(serve('--store', `sqlite:${join(directory, 'x.db')}?table=no-dashes`), 2, /not a valid table name/));
  it('an SQLite file in a missing directory exits 1', () =>
    assertOneLine(serve('--store', 'sqlite:/no/such/dir/idem.db'), 1, /the directory \/no\/such\/dir does not exist/));
  it('an unreachable postgres exits 1', () =>
    assertOneLine(
      serve('--store', 'postgres://postgres@127.0.0.1:1/test'),
      1,
      /cannot reach the postgres store at postgres:\/\/postgres@127\.0\.0\.1:1\/test: connect ECONNREFUSED/,
    ));
  it('an unreachable redis exits 1', () =>
    assertOneLine(
      serve('--store', 'redis://127.0.0.1:1'),
      1,
      /cannot reach the redis store at redis:\/\/127\.0\.0\.1:1: connect ECONNREFUSED/,
    ));
  it('an unreachable mysql exits 1, with the password hidden', () =>
    assertOneLine(
      serve('--store', 'mysql://root:secret@127.0.0.1:1/test'),
      1,
      /cannot reach the mysql store at mysql:\/\/root:\*\*\*@127\.0\.0\.1:1\/test: connect ECONNREFUSED/,
    ));
  it('a postgres database that does not exist exits 1', () =>
    assertOneLine(
      serve('--store', 'postgres://postgres@127.0.0.1:5432/no_such_db_idem'),
      1,
      /cannot (reach|use) the postgres store.*no_such_db_idem/,
    ));
  it('a mysql store that refuses the password exits 1 with the reason its ping gives', () =>
    assertOneLine(
      serve('--store', 'mysql://root:wrong-password@127.0.0.1:3306/test'),
      1,
      /^idem: cannot use the mysql store at mysql:\/\/root:\*\*\*@127\.0\.0\.1:3306\/test: .*password/,
    ));
  it('an unreachable upstream exits 1', () =>
    assertOneLine(
      ['serve', '--upstream', 'http://127.0.0.1:1', '--store', 'memory:'],
      1,
      /cannot reach the upstream http:\/\/127\.0\.0\.1:1: connect ECONNREFUSED/,
    ));
  it('a missing config file exits 2', () =>
    assertOneLine(['serve', '--config', join(directory, 'none.json')], 2, /no such file/));
  it('a config file that is not JSON exits 2', () => {
    const path = join(directory, 'broken.json');
    writeFileSync(path, '{ upstream: ');
    return assertOneLine(['serve', '--config', path], 2, /is not valid JSON/);
  });
  it('a config file with an unknown setting exits 2 and lists the known ones', () => {
    const path = join(directory, 'unknown.json');
    writeFileSync(path, JSON.stringify({ upstream: upstream.url, leaseMs: 5 }));
    return assertOneLine(['serve', '--config', path], 2, /unknown setting "leaseMs"; known settings: upstream, port/);
  });
  it('a config file value of the wrong type exits 2', () => {
    const path = join(directory, 'types.json');
    writeFileSync(path, JSON.stringify({ upstream: upstream.url, required: 'yes' }));
    return assertOneLine(['serve', '--config', path], 2, /"required" in the config file must be true or false/);
  });
  it('a port in use exits 1', async () => {
    const port = new URL(upstream.url).port;
    await assertOneLine(
      serve('--store', 'memory:', '--port', port),
      1,
      new RegExp(`port ${port} on 127.0.0.1 is already in use`),
    );
  });
  it('check without a URL exits 2', () => assertOneLine(['check'], 2, /missing required argument 'url'/));
  it('check with a bad --header exits 2', () =>
    assertOneLine(['check', `${upstream.url}/charges`, '-H', 'nocolon'], 2, /--header "nocolon": write name:value/));
  it('check with a body that is not JSON exits 2', () =>
    assertOneLine(['check', `${upstream.url}/charges`, '--body', '{nope'], 2, /--body is not JSON/));
  it('check with a bad --timeout exits 2', () =>
    assertOneLine(['check', `${upstream.url}/charges`, '--timeout', 'soon'], 2, /--timeout: "soon" is not a duration/));
  it('check with an unknown scenario exits 2', () =>
    assertOneLine(['check', `${upstream.url}/charges`, '--only', 'everything'], 2, /no scenario "everything"/));
  it('check with a --verify URL that cannot be counted exits 1', () =>
    assertOneLine(
      ['check', `${upstream.url}/charges`, '--verify', `${upstream.url}/missing`],
      1,
      /--verify .*answered 404/,
    ));
  it('check of an unreachable endpoint exits 1', () =>
    assertOneLine(['check', 'http://127.0.0.1:1/x'], 1, /cannot reach the endpoint http:\/\/127\.0\.0\.1:1/));
  it('keys with a bad store URL exits 2', () =>
    assertOneLine(['keys', 'list', '--store', 'nope'], 2, /not a store URL I know/));
  it('keys on an unreachable store exits 1', () =>
    assertOneLine(['keys', 'list', '--store', 'redis://127.0.0.1:1'], 1, /cannot reach the redis store/));
  it('keys on memory: exits 2', () =>
    assertOneLine(['keys', 'list', '--store', 'memory:'], 2, /memory: lives inside one process/));
  it('keys show without a key exits 2', () =>
    assertOneLine(['keys', 'show', '--store', `sqlite:${join(directory, 'k.db')}`], 2, /name a record/));
  it('keys show --key without credentials or --scope exits 2 and says what to give', () =>
    assertOneLine(
      ['keys', 'show', '--key', 'k', '--store', `sqlite:${join(directory, 'k.db')}`],
      2,
      /--key needs the credentials the client sent: .*--header 'authorization: Bearer \.\.\.' or --cookie name=value.*--anonymous/,
    ));
  it('keys list with a bad --limit exits 2', () =>
    assertOneLine(
      ['keys', 'list', '--limit', '-3', '--store', `sqlite:${join(directory, 'k.db')}`],
      2,
      /--limit "-3"/,
    ));
  it('demo with a bad --payments exits 2', () =>
    assertOneLine(['demo', '--exit', '--payments', 'many'], 2, /--payments "many"/));
});
