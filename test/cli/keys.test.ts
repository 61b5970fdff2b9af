import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { send } from '../../src/testing/http-client.js';
import { idemArgs, newKey, ROOT, type RunningIdem, runIdem, startIdem, TestUpstream, tempDir } from './helpers.js';

const directory = tempDir();
const storeUrl = `sqlite:${join(directory, 'keys.db')}`;
after(() => rmSync(directory, { recursive: true, force: true }));

interface Listed {
  key: string;
  state: string;
  attempts: number;
  result?: string;
}

async function listJson(...args: string[]): Promise<Listed[]> {
  const run = await runIdem(['keys', 'list', '--store', storeUrl, '--json', ...args]);
  assert.equal(run.code, 0, run.stderr);
  return run.stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Listed)
    .filter((entry) => entry.key !== undefined);
}

describe('idem keys on sqlite', () => {
  const upstream = new TestUpstream();
  let gateway: RunningIdem;
  const key = newKey();
  let storeKey = '';

  before(async () => {
    await upstream.start();
    gateway = await startIdem(['--upstream', upstream.url, '--store', storeUrl]);
    const first = await send(`${gateway.url}/charges`, {
      body: { amount: 4200 },
      headers: { 'idempotency-key': key, authorization: 'Bearer team-a' },
    });
    assert.equal(first.status, 201);
  });
  after(async () => {
    await gateway.stop();
    await upstream.close();
  });

  it('lists the stored key as a table and as JSON lines', async () => {
    const table = await runIdem(['keys', 'list', '--store', storeUrl]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^STORE KEY\s+STATE\s+TRIES\s+UPDATED\s+EXPIRES\s+RESULT$/m);
    assert.match(table.stdout, /completed\s+1\s+.*HTTP 201 application\/json, \d+ B$/m);
    const [record, ...rest] = await listJson();
    assert.equal(rest.length, 0);
    assert.equal(record?.state, 'completed');
    storeKey = record?.key as string;
  });

  it('shows a record by its store key, with the stored response', async () => {
    const run = await runIdem(['keys', 'show', storeKey, '--store', storeUrl]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`^store key   ${storeKey.replace(/[-_]/g, '.')}$`, 'm'));
    assert.match(run.stdout, /^state {7}completed$/m);
    assert.match(run.stdout, /^response {4}HTTP 201, \d+ bytes$/m);
    assert.match(run.stdout, /location: \/charges\/ch_1/);
    assert.match(run.stdout, /"amount":4200/);
  });

  it('finds the same record from the raw key and the credentials the client sent', async () => {
    const show = (...args: string[]) => runIdem(['keys', 'show', '--store', storeUrl, '--key', key, ...args]);
    const run = await show('--header', 'Authorization: Bearer team-a', '--json');
    assert.equal(run.code, 0, run.stderr);
    const shown = JSON.parse(run.stdout) as { key: string; result: { kind: string; status: number } };
    assert.equal(shown.key, storeKey);
    assert.equal(shown.result.kind, 'http');
    assert.equal(shown.result.status, 201);
    const short = await show('--authorization', 'Bearer team-a', '--json');
    assert.equal((JSON.parse(short.stdout) as { key: string }).key, storeKey, '--authorization is short for --header');
    const otherClient = await show('--header', 'authorization: Bearer team-b');
    assert.equal(otherClient.code, 1, 'under other credentials it is another scope');
    assert.match(otherClient.stderr, /^idem: no record with store key /);
    const perRoute = await show('--authorization', 'Bearer team-a', '--path', '/charges');
    assert.equal(perRoute.code, 1, 'the gateway does not key by route: --path names another record');
  });

  it('refuses to release a completed key and points to delete', async () => {
    const run = await runIdem(['keys', 'release', storeKey, '--store', storeUrl]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /is completed, not in progress.*idem keys delete/);
  });

  it('releases a key left in progress by a gateway that was killed, so the retry runs at once', async () => {
    const stuck = newKey();
    const body = { amount: 9, ms: 800 };
    const killed = await startIdem(['--upstream', upstream.url, '--store', storeUrl, '--lease', '60s']);
    const lost = send(`${killed.url}/charges`, {
      body,
      headers: { authorization: 'Bearer test-client', 'idempotency-key': stuck },
    }).catch(() => 'dropped');
    await sleep(300);
    assert.equal(await killed.stop('SIGKILL'), null);
    assert.equal(await lost, 'dropped');

    const retry = await send(`${gateway.url}/charges`, {
      body,
      headers: { authorization: 'Bearer test-client', 'idempotency-key': stuck },
    });
    assert.equal(retry.status, 409, 'the dead gateway still holds the key');
    const inProgress = await listJson('--state', 'in_progress');
    assert.equal(inProgress.length, 1);

    const release = await runIdem([
      'keys',
      'release',
      '--key',
      stuck,
      '--header',
      'authorization: Bearer test-client',
      '--store',
      storeUrl,
    ]);
    assert.equal(release.code, 0, release.stderr);
    assert.match(
      release.stdout,
      /^released .*: the next request with this key runs again \(its lease had \d+ s left\)\.$/m,
    );

    const before = upstream.hitCount('/charges');
    const after = await send(`${gateway.url}/charges`, {
      body,
      headers: { authorization: 'Bearer test-client', 'idempotency-key': stuck },
    });
    assert.equal(after.status, 201);
    assert.equal(upstream.hitCount('/charges') - before, 1);
  });

  it('deletes a record, after which the key runs again', async () => {
    const run = await runIdem(['keys', 'delete', storeKey, '--store', storeUrl]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^deleted /);
    const gone = await runIdem(['keys', 'show', storeKey, '--store', storeUrl]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no record with store key/);
    const again = await runIdem(['keys', 'delete', storeKey, '--store', storeUrl]);
    assert.equal(again.code, 1);
    const rerun = await send(`${gateway.url}/charges`, {
      body: { amount: 4200 },
      headers: { 'idempotency-key': key, authorization: 'Bearer team-a' },
    });
    assert.equal(rerun.headers['idempotent-replayed'], undefined);
  });

  it('sweeps expired records and only those', async () => {
    const store = new SqliteStore({ path: join(directory, 'keys.db') });
    const past = Date.now() - 60_000;
    for (const name of ['old-1', 'old-2', 'old-3']) {
      await store.claim({
        key: name,
        fingerprint: 'f',
        token: 't',
        nowMs: past,
        leaseExpiresAtMs: past + 1000,
        expiresAtMs: past + 2000,
      });
    }
    await store.close();
    const live = (await listJson()).length;
    const run = await runIdem(['keys', 'sweep', '--store', storeUrl, '--batch', '2']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'swept 3 expired records from sqlite.\n');
    const left = await listJson();
    assert.equal(left.length, live - 3);
    assert.ok(!left.some((record) => record.key.startsWith('old-')));
  });

  it('draws a progress bar while sweeping when stdout is a terminal', {
    skip: !existsSync('/usr/bin/script') && 'needs script(1) for a pseudo-terminal',
  }, async () => {
    const store = new SqliteStore({ path: join(directory, 'keys.db') });
    const past = Date.now() - 60_000;
    for (let i = 0; i < 1500; i++) {
      await store.claim({
        key: `bar-${i}`,
        fingerprint: 'f',
        token: 't',
        nowMs: past,
        leaseExpiresAtMs: past + 1,
        expiresAtMs: past + 2,
      });
    }
    await store.close();
    const command = [process.execPath, ...idemArgs(['keys', 'sweep', '--store', storeUrl])].join(' ');
    const tty = await new Promise<string>((resolve, reject) => {
      execFile('script', ['-qec', command, '/dev/null'], { cwd: ROOT }, (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      );
    });
    assert.match(tty, /sweeping .* 0\/1500 expired records/);
    assert.match(tty, /sweeping .* 1500\/1500 expired records/);
    assert.match(tty, /swept 1500 expired records from sqlite\./);
  });

  it('pages through records with --limit and --cursor', async () => {
    const all = await listJson();
    assert.ok(all.length >= 2);
    const page = await runIdem(['keys', 'list', '--store', storeUrl, '--limit', '1']);
    const cursor = /^more: idem keys list --cursor (\S+)$/m.exec(page.stdout)?.[1];
    assert.ok(cursor, page.stdout);
    const next = await listJson('--cursor', cursor);
    assert.equal(next.length, all.length - 1);
  });
});

describe('idem keys list into a reader that stops early', () => {
  it('exits 0 without a word on stderr when stdout closes (idem keys list --json | head -2)', async () => {
    const path = join(directory, 'many.db');
    const store = new SqliteStore({ path });
    const now = Date.now();
    for (let i = 0; i < 3000; i++) {
      await store.claim({
        key: `many-${String(i).padStart(5, '0')}`,
        fingerprint: 'f',
        token: 't',
        nowMs: now,
        leaseExpiresAtMs: now + 60_000,
        expiresAtMs: now + 3_600_000,
      });
    }
    await store.close();
    const child = spawn(
      process.execPath,
      idemArgs(['keys', 'list', '--json', '--limit', '3000', '--store', `sqlite:${path}`]),
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    // As head does: read the first lines, then close the pipe while idem is still writing.
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(stderr, '', 'no EPIPE stack trace');
    assert.equal(code, 0);
  });
});
