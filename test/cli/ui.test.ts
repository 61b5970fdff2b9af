// The dashboard's endpoints over real stores (a SQLite file, PostgreSQL, Redis) with records the
// engine wrote, and `idem ui` as users start it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Dashboard, startDashboard } from '../../src/cli/ui/dashboard-server.js';
import type { KeyStats } from '../../src/cli/ui/key-stats.js';
import { MetricsSampler, parseCounters } from '../../src/cli/ui/metrics-sampler.js';
import type { AdminStore } from '../../src/core/store.js';
import { send } from '../../src/testing/http-client.js';
import * as postgresFactory from '../stores/postgres.factory.js';
import * as redisFactory from '../stores/redis.factory.js';
import * as sqliteFactory from '../stores/sqlite.factory.js';
import { idemArgs, newKey, ROOT, startIdem, TestUpstream, tempDir } from './helpers.js';
import { HOSTILE_BODY, type Seeded, seedStore } from './ui-seed.js';

const TOKEN = 'ui-test-token-0123456789';

/** An answer of the dashboard; `body` is typed by the caller (an error's shape by default). */
interface Answer<T = Problem> {
  status: number;
  headers: Headers;
  body: T;
}
interface Problem {
  error: { code: string; message: string; leaseLeftMs?: number };
}
type Released = Problem & { message: string };
interface RecordBody {
  state: string;
  attempts: number;
  takeovers: number;
  result: { kind: string; status?: number; body?: string };
}
interface RunsBody {
  available: boolean;
  items: { id: string; state: string; steps: { name: string; startedAtMs: number; endedAtMs: number }[] }[];
}

/** A request with the dashboard's token, unless `init` sets its own authorization. */
async function call<T = Problem>(dashboard: Dashboard, path: string, init: RequestInit = {}): Promise<Answer<T>> {
  const headers = { authorization: `Bearer ${dashboard.token}`, ...(init.headers as Record<string, string>) };
  const response = await fetch(new URL(path, dashboard.url), { ...init, headers });
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  return { status: response.status, headers: response.headers, body: type.includes('json') ? JSON.parse(text) : text };
}

function release(dashboard: Dashboard, body: unknown, headers: Record<string, string> = {}): Promise<Answer<Released>> {
  return call<Released>(dashboard, '/api/release', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

interface KeysBody {
  records: { key: string; shownState: string }[];
  nextCursor?: string;
}

/** The stores, imported statically so that the test runner sees which servers this file needs. */
const STORES = { sqlite: sqliteFactory, postgres: postgresFactory, redis: redisFactory } as const;

for (const [kind, factory] of Object.entries(STORES)) {
  describe(`the dashboard over ${kind}`, () => {
    const namespace = `ui_dash_${process.pid}`;
    let store: AdminStore;
    let seeded: Seeded;
    let dashboard: Dashboard;

    before(async () => {
      await factory.dropStore(namespace);
      store = await factory.createStore(namespace);
      seeded = await seedStore(store);
      dashboard = await startDashboard({ store, storeLabel: `${kind} test store`, token: TOKEN });
    });
    after(async () => {
      await dashboard?.close();
      await store?.close();
      await factory.dropStore(namespace);
    });

    it('counts keys by state, with the stuck one and the takeover, and buckets them in time', async () => {
      const { status, body } = await call<{ stats: KeyStats; journals: boolean; metrics: unknown }>(
        dashboard,
        '/api/overview',
      );
      assert.equal(status, 200);
      const { counts, takenOver, buckets, scanned, truncated } = body.stats;
      assert.equal(counts.running, 1);
      assert.equal(counts.stuck, 1);
      assert.ok(counts.completed >= 10, `completed: ${counts.completed}`);
      assert.equal(counts.expired, 0);
      assert.equal(truncated, false);
      assert.ok(takenOver.records >= 1 && takenOver.takeovers >= 1);
      const sum = (name: 'claimed' | 'takeovers') => buckets.reduce((total, bucket) => total + bucket[name], 0);
      assert.equal(sum('claimed'), scanned);
      assert.equal(sum('takeovers'), takenOver.takeovers);
      assert.equal(body.journals, true);
      assert.deepEqual(body.metrics, { enabled: false, samples: [] });
    });

    it('lists in-progress keys with their shown state, and pages the whole listing with cursors', async () => {
      const inProgress = await call<KeysBody>(dashboard, '/api/keys?state=in_progress');
      const states = Object.fromEntries(inProgress.body.records.map((r) => [r.key, r.shownState]));
      assert.deepEqual(states, { [seeded.live]: 'running', [seeded.stuck]: 'stuck' });
      const keys: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await call<KeysBody>(
          dashboard,
          `/api/keys?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        );
        assert.equal(page.status, 200);
        keys.push(...page.body.records.map((record) => record.key));
        cursor = page.body.nextCursor;
      } while (cursor !== undefined);
      for (const key of [...seeded.completed, seeded.live, seeded.stuck, seeded.takenOver, seeded.hostile]) {
        assert.ok(keys.includes(key), `${key} listed`);
      }
    });

    it("shows a key's record: the stored response as text, and the takeover in its attempts", async () => {
      const hostile = await call<RecordBody>(dashboard, `/api/record?key=${encodeURIComponent(seeded.hostile)}`);
      assert.equal(hostile.status, 200);
      assert.equal(hostile.body.result.kind, 'http');
      assert.equal(hostile.body.result.status, 201);
      assert.equal(hostile.body.result.body, HOSTILE_BODY);
      const taken = await call<RecordBody>(dashboard, `/api/record?key=${encodeURIComponent(seeded.takenOver)}`);
      assert.equal(taken.body.attempts, 2);
      assert.equal(taken.body.takeovers, 1);
      assert.equal(taken.body.state, 'completed');
    });

    it('lists the workflow run with each step timed, and the notification log', async () => {
      const runs = await call<RunsBody>(dashboard, '/api/workflows');
      assert.equal(runs.body.available, true);
      const run = runs.body.items.find((item) => item.id === 'order-1');
      assert.ok(run);
      assert.equal(run.state, 'completed');
      assert.deepEqual(
        run.steps.map((step) => step.name),
        ['reserve', 'charge', 'email'],
      );
      for (const step of run.steps) assert.ok(step.endedAtMs >= step.startedAtMs);
      const log = await call<{ items: { kind: string }[] }>(dashboard, '/api/notifications');
      assert.deepEqual(log.body.items.map((entry) => entry.kind).sort(), ['sent', 'suppressed']);
    });

    it('refuses a release without the token, with the wrong one, cross-site, or not as JSON', async () => {
      const key = seeded.stuck;
      assert.equal((await release(dashboard, { key }, { authorization: '' })).body.error.code, 'TOKEN_MISSING');
      const wrong = await release(dashboard, { key }, { authorization: 'Bearer not-the-token' });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.error.code, 'TOKEN_WRONG');
      const crossSite = await release(dashboard, { key }, { origin: 'http://evil.example' });
      assert.equal(crossSite.status, 403);
      const form = await release(dashboard, `key=${key}`, { 'content-type': 'application/x-www-form-urlencoded' });
      assert.equal(form.status, 415);
      const stillThere = await call<RecordBody>(dashboard, `/api/record?key=${encodeURIComponent(key)}`);
      assert.equal(stillThere.body.state, 'in_progress');
    });

    it('releases only in-progress keys, and a live lease only when forced', async () => {
      const completed = await release(dashboard, { key: seeded.hostile });
      assert.equal(completed.status, 409);
      assert.equal(completed.body.error.code, 'NOT_IN_PROGRESS');
      const live = await release(dashboard, { key: seeded.live });
      assert.equal(live.status, 428);
      assert.equal(live.body.error.code, 'LEASE_LIVE');
      assert.ok((live.body.error.leaseLeftMs ?? 0) > 0);
      assert.equal((await call(dashboard, `/api/record?key=${encodeURIComponent(seeded.live)}`)).status, 200);
      const forced = await release(dashboard, { key: seeded.live, force: true });
      assert.equal(forced.status, 200);
      assert.match(forced.body.message, /lease had \d+ s left/);
      const stuck = await release(dashboard, { key: seeded.stuck });
      assert.equal(stuck.status, 200);
      assert.match(stuck.body.message, /already ended/);
      assert.equal((await call(dashboard, `/api/record?key=${encodeURIComponent(seeded.stuck)}`)).status, 404);
      assert.equal((await release(dashboard, { key: seeded.stuck })).status, 404);
    });

    it('answers bad input and other methods with a 4xx JSON error, never a 500', async () => {
      const cases: [string, RequestInit, number][] = [
        ['/api/keys?limit=abc', {}, 400],
        ['/api/keys?limit=0', {}, 400],
        ['/api/keys?state=stuck', {}, 400],
        ['/api/keys?cursor=%00not-a-cursor', {}, 400],
        ['/api/record', {}, 400],
        [`/api/record?key=${'x'.repeat(300)}`, {}, 400],
        ['/api/record?key=no-such-key', {}, 404],
        ['/api/release', {}, 405],
        ['/api/keys', { method: 'DELETE' }, 405],
        ['/api/nope', {}, 404],
        ['/', { method: 'POST' }, 405],
      ];
      for (const [path, init, status] of cases) {
        const answer = await call(dashboard, path, init);
        assert.equal(answer.status, status, `${init.method ?? 'GET'} ${path}: ${JSON.stringify(answer.body)}`);
        assert.equal(typeof answer.body.error.message, 'string');
      }
      for (const body of ['not json', '[1]', '{"key": 42}', '{"key": "k", "force": "yes"}']) {
        const answer = await release(dashboard, body);
        assert.equal(answer.status, 400, body);
      }
      const huge = await release(dashboard, JSON.stringify({ key: 'k', pad: 'x'.repeat(20_000) }));
      assert.equal(huge.status, 413);
    });
  });
}

describe('the dashboard page and its guard', () => {
  let dashboard: Dashboard;
  let store: AdminStore;
  before(async () => {
    const { SqliteStore } = await import('../../src/stores/sqlite/index.js');
    store = new SqliteStore({ path: join(tempDir(), 'page.db') });
    dashboard = await startDashboard({ store, storeLabel: 'sqlite:page.db' });
  });
  after(async () => {
    await dashboard.close();
    await store.close();
  });

  it('serves the page with a strict content security policy and no CORS', async () => {
    const page = await call<string>(dashboard, '/');
    assert.equal(page.status, 200);
    assert.match(page.body, /<title>Idem dashboard<\/title>/);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.equal(page.headers.get('access-control-allow-origin'), null);
    const preflight = await call(dashboard, '/api/release', { method: 'OPTIONS' });
    assert.equal(preflight.status, 405);
    assert.equal(preflight.headers.get('access-control-allow-origin'), null);
  });

  it('refuses a Host that is not its own (DNS rebinding)', async () => {
    const { request } = await import('node:http');
    const url = new URL(dashboard.url);
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = request({
        host: url.hostname,
        port: url.port,
        path: '/api/overview',
        headers: { host: 'evil.example' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 421);
  });

  it('makes a random token of its own when none is given, and gives the page URL with it in the fragment', () => {
    assert.match(dashboard.token, /^[\w-]{24}$/);
    assert.equal(dashboard.pageUrl, `${dashboard.url}#token=${dashboard.token}`);
  });

  it('refuses reads without the token on loopback too, and serves the page itself without one', async () => {
    for (const path of READS) {
      const answer = await call(dashboard, path, { headers: { authorization: '' } });
      assert.equal(answer.status, 401, path);
      assert.equal(answer.body.error.code, 'TOKEN_MISSING');
      assert.match(answer.body.error.message, /operator token.*#token=.*Authorization: Bearer/);
      assert.equal(answer.headers.get('www-authenticate'), 'Bearer');
    }
    for (const path of ['/', '/app.js', '/app.css']) {
      assert.equal((await call<string>(dashboard, path, { headers: { authorization: '' } })).status, 200, path);
    }
  });

  it('reads the counters it samples from Prometheus text, summed over labels', () => {
    const text =
      '# TYPE idem_conflicts_total counter\nidem_conflicts_total 3\nidem_mismatches_total{route="/a"} 2\nidem_mismatches_total{route="/b"} 1\n';
    assert.deepEqual(parseCounters(text), { conflicts: 3, mismatches: 3, runs: 0, replays: 0 });
  });
});

/** Every read endpoint, each answering 200 with the token (the store is empty). */
const READS = ['/api/overview', '/api/keys', '/api/workflows', '/api/notifications'];

describe('a dashboard bound to every interface (0.0.0.0), reached by 127.0.0.1', () => {
  let dashboard: Dashboard;
  let store: AdminStore;
  let seeded: Seeded;
  before(async () => {
    const { SqliteStore } = await import('../../src/stores/sqlite/index.js');
    store = new SqliteStore({ path: join(tempDir(), 'exposed.db') });
    seeded = await seedStore(store);
    const bound = await startDashboard({ store, storeLabel: 'sqlite:exposed.db', host: '0.0.0.0', token: TOKEN });
    const url = bound.url.replace('//0.0.0.0:', '//127.0.0.1:');
    dashboard = { ...bound, url };
  });
  after(async () => {
    await dashboard.close();
    await store.close();
  });

  it('refuses every read without the token with 401, saying how to give it', async () => {
    const record = `/api/record?key=${encodeURIComponent(seeded.hostile)}`;
    for (const path of [...READS, record, `/api/keys?state=in_progress`]) {
      const answer = await call(dashboard, path, { headers: { authorization: '' } });
      assert.equal(answer.status, 401, path);
      assert.equal(answer.body.error.code, 'TOKEN_MISSING');
      assert.match(answer.body.error.message, /operator token/);
      assert.equal(JSON.stringify(answer.body).includes(HOSTILE_BODY), false);
    }
    const basic = await call(dashboard, '/api/keys', { headers: { authorization: `Basic ${TOKEN}` } });
    assert.equal(basic.status, 401);
  });

  it('answers reads with the token', async () => {
    for (const path of READS) assert.equal((await call(dashboard, path)).status, 200, path);
    const record = await call<RecordBody>(dashboard, `/api/record?key=${encodeURIComponent(seeded.hostile)}`);
    assert.equal(record.status, 200);
    assert.equal(record.body.result.body, HOSTILE_BODY);
  });

  it('refuses a wrong token of any length with 401', async () => {
    const wrongs = [
      'x',
      TOKEN.slice(0, -1),
      `${TOKEN}x`,
      `${TOKEN.slice(0, -1)}X`,
      TOKEN.toUpperCase(),
      'y'.repeat(4096),
    ];
    for (const wrong of wrongs) {
      const answer = await call(dashboard, '/api/keys', { headers: { authorization: `Bearer ${wrong}` } });
      assert.equal(answer.status, 401, `${wrong.length} characters`);
      assert.equal(answer.body.error.code, 'TOKEN_WRONG');
      assert.match(answer.body.error.message, /--token/);
    }
  });

  it('still releases with the token only', async () => {
    const without = await release(dashboard, { key: seeded.stuck }, { authorization: '' });
    assert.equal(without.status, 401);
    assert.equal((await release(dashboard, { key: seeded.stuck })).status, 200);
  });
});

describe('idem ui', () => {
  it('prints its URL and a random operator token, serves the page, and stops on SIGTERM', async () => {
    const file = join(tempDir(), 'cli.db');
    const child = spawn(process.execPath, idemArgs(['ui', '--store', `sqlite:${file}`, '--port', '0']), {
      cwd: ROOT,
      env: { ...process.env, IDEM_UI_TOKEN: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const lines = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk) => {
        stdout += chunk;
        if (/operator token/.test(stdout)) resolve(stdout);
      });
      child.on('close', () => reject(new Error(`idem ui exited: ${stdout}${stderr}`)));
    });
    const [, url, fragmentToken] = /dashboard on (http:\/\/127\.0\.0\.1:\d+\/)#token=([\w-]{24}) /.exec(lines) ?? [];
    assert.ok(url, lines);
    const token = /operator token for reading and releasing keys: ([\w-]{24}) /.exec(lines)?.[1];
    assert.equal(token, fragmentToken, lines);
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.equal((await fetch(new URL('/api/overview', url))).status, 401);
    const read = await fetch(new URL('/api/overview', url), { headers: { authorization: `Bearer ${token}` } });
    assert.equal(read.status, 200);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
  });

  it('refuses a short --token and a --metrics that is not a URL, as usage mistakes', async () => {
    const { runIdem } = await import('./helpers.js');
    const short = await runIdem(['ui', '--token', 'short']);
    assert.equal(short.code, 2);
    assert.match(short.stderr, /at least 16 characters/);
    const metrics = await runIdem(['ui', '--metrics', 'not a url']);
    assert.equal(metrics.code, 2);
    assert.match(metrics.stderr, /--metrics/);
  });
});

describe('conflicts and mismatches sampled from idem serve', () => {
  it('counts a mismatch the gateway answered since the previous sample, and shows it on the overview', async () => {
    const upstream = await new TestUpstream().start();
    const gateway = await startIdem(['--upstream', upstream.url, '--store', 'memory:', '--metrics-token', TOKEN]);
    const sampler = new MetricsSampler({ url: `${gateway.url}/__idem/metrics`, token: TOKEN, intervalMs: 3_600_000 });
    const { SqliteStore } = await import('../../src/stores/sqlite/index.js');
    const store = new SqliteStore({ path: join(tempDir(), 'metrics.db') });
    const dashboard = await startDashboard({ store, storeLabel: 'sqlite', metrics: sampler });
    try {
      await sampler.sample();
      const key = newKey();
      const headers = { 'idempotency-key': key, authorization: 'Bearer team-a' };
      assert.equal((await send(`${gateway.url}/charges`, { body: { amount: 1 }, headers })).status, 201);
      assert.equal((await send(`${gateway.url}/charges`, { body: { amount: 2 }, headers })).status, 422);
      await sampler.sample();
      const { body } = await call<{
        metrics: { enabled: boolean; source: string; samples: { delta: Record<string, number> }[] };
      }>(dashboard, '/api/overview');
      assert.equal(body.metrics.enabled, true);
      assert.match(body.metrics.source, /\/__idem\/metrics$/);
      const last = body.metrics.samples.at(-1);
      assert.deepEqual(last?.delta, { conflicts: 0, mismatches: 1, runs: 1, replays: 0 });
    } finally {
      await dashboard.close();
      await store.close();
      await gateway.stop();
      await upstream.close();
    }
  });

  it('keeps the reason when the gateway refuses the token', async () => {
    const upstream = await new TestUpstream().start();
    const gateway = await startIdem(['--upstream', upstream.url, '--store', 'memory:', '--metrics-token', TOKEN]);
    try {
      const sampler = new MetricsSampler({ url: `${gateway.url}/__idem/metrics`, token: 'wrong', intervalMs: 1000 });
      await sampler.sample();
      assert.match(sampler.report().lastError ?? '', /HTTP 401 \(check --metrics-token\)/);
    } finally {
      await gateway.stop();
      await upstream.close();
    }
  });
});
