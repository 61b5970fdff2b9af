import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Gateway, type GatewayOptions } from '../../src/cli/gateway/gateway.js';
import { resolveServeConfig } from '../../src/cli/gateway/gateway-config.js';
import type { Store } from '../../src/core/store.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { PostgresStore } from '../../src/stores/postgres/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { type SentResponse, send } from '../../src/testing/http-client.js';
import { listen } from '../http/serve.js';
import { startIdem } from './helpers.js';

/** A port nothing listens on (taken, then given back). */
async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A private redis-server on `port`, no persistence; the shared one on 6379 is never touched. */
class PrivateRedis {
  readonly port: number;
  #child: ChildProcess | undefined;

  constructor(port: number) {
    this.port = port;
  }

  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    this.#child = child;
    let out = '';
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      out += chunk;
      if (/ready to accept connections/i.test(out)) break;
    }
    child.stdout?.resume();
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
}

interface Running {
  url: string;
  gateway: Gateway;
  logged: string[];
}

async function startGateway(store: Store, options: Partial<GatewayOptions> = {}): Promise<Running> {
  const logged: string[] = [];
  const gateway = new Gateway({
    upstream: 'http://127.0.0.1:1',
    store,
    graceMs: 100,
    onError: (error) => logged.push(error instanceof Error ? error.message : String(error)),
    ...options,
  });
  return { url: await gateway.listen(0), gateway, logged };
}

const get = (url: string, headers: Record<string, string> = {}) => send(url, { method: 'GET', headers });

/** Asks `path` until it answers `status`, for at most 15 s (the probe's answer is reused for 1 s). */
async function until(url: string, status: number): Promise<SentResponse> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const answer = await get(url);
    if (answer.status === status || Date.now() > deadline) return answer;
    await sleep(100);
  }
}

describe('the gateway health and readiness endpoints', () => {
  it('answers health and readiness 200 while the store answers', async () => {
    const running = await startGateway(new MemoryStore());
    try {
      const health = await get(`${running.url}/__idem/health`);
      assert.equal(health.status, 200);
      assert.deepEqual(
        {
          status: (health.json as { status: string }).status,
          store: (health.json as { storeStatus: string }).storeStatus,
        },
        { status: 'ok', store: 'reachable' },
      );
      const ready = await get(`${running.url}/__idem/ready`);
      assert.equal(ready.status, 200);
      assert.equal((ready.json as { status: string }).status, 'ready');
    } finally {
      await running.gateway.close();
    }
  });

  it('fails readiness while a private redis-server is down, keeps liveness, and is ready again once it is back', async () => {
    const redis = new PrivateRedis(await unusedPort());
    await redis.start();
    const store = new RedisStore({ url: `redis://127.0.0.1:${redis.port}`, prefix: 'idem_health_test:' });
    const running = await startGateway(store);
    try {
      assert.equal((await until(`${running.url}/__idem/ready`, 200)).status, 200);
      await redis.stop();
      const down = await until(`${running.url}/__idem/ready`, 503);
      assert.equal(down.status, 503);
      assert.equal(down.headers['retry-after'], '1');
      const body = down.json as Record<string, unknown>;
      assert.equal(body.storeStatus, 'unreachable');
      assert.equal(body.code, 'STORE_UNAVAILABLE');
      for (const secret of [String(redis.port), 'ECONNREFUSED', 'Connection', 'redis://']) {
        assert.ok(!down.text.includes(secret), `the readiness body leaks ${secret}: ${down.text}`);
      }
      const live = await get(`${running.url}/__idem/health`);
      assert.equal(live.status, 200);
      assert.equal((live.json as { storeStatus: string }).storeStatus, 'unreachable');
      assert.ok(!live.text.includes(String(redis.port)));
      // One line per change of state, not one per probe. A busy machine may time a probe out
      // before the outage too (a down line, then an up line), so the check is on alternation.
      const states = running.logged.map((line) => (/stopped answering/.test(line) ? 'down' : 'up'));
      const alternating = states.map((_, i) => (i % 2 === 0 ? 'down' : 'up'));
      assert.deepEqual(states, alternating, running.logged.join('\n'));
      assert.equal(states.at(-1), 'down', running.logged.join('\n'));
      assert.match(running.logged.at(-1) as string, /redis store stopped answering health probes \(.+\)/);
      await redis.start();
      assert.equal((await until(`${running.url}/__idem/ready`, 200)).status, 200);
      assert.match(running.logged.at(-1) as string, /answers again/);
    } finally {
      await running.gateway.close();
      await store.close();
      await redis.stop();
    }
  });

  it('never sends the driver error of a PostgreSQL store on a closed port, and logs it instead', async () => {
    const port = await unusedPort();
    const store = new PostgresStore({ url: `postgres://postgres@127.0.0.1:${port}/test`, connectTimeoutMs: 500 });
    const running = await startGateway(store);
    try {
      const ready = await get(`${running.url}/__idem/ready`);
      assert.equal(ready.status, 503);
      const health = await get(`${running.url}/__idem/health`);
      assert.equal(health.status, 200);
      for (const answer of [ready, health]) {
        assert.ok(!answer.text.includes('ECONNREFUSED'), answer.text);
        assert.ok(!answer.text.includes(String(port)), answer.text);
      }
      assert.match(running.logged.join('\n'), new RegExp(`ECONNREFUSED|${port}`));
    } finally {
      await running.gateway.close();
      await store.close();
    }
  });

  it('answers a flood of health checks with one store probe', async () => {
    const store = new MemoryStore();
    let probes = 0;
    const counting = new Proxy(store, {
      get(target, property) {
        if (property === 'ping') return async () => void probes++;
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Store;
    const running = await startGateway(counting, { healthCacheMs: 60_000 });
    try {
      const answers = await Promise.all(Array.from({ length: 50 }, () => get(`${running.url}/__idem/ready`)));
      assert.ok(answers.every((answer) => answer.status === 200));
      assert.equal(probes, 1);
    } finally {
      await running.gateway.close();
    }
  });

  it('answers health and readiness 503 once shutdown began', async () => {
    const running = await startGateway(new MemoryStore());
    // The gateway's handler on a server of our own, which stays open after the gateway closes.
    const own = createHttpServer((req, res) => void running.gateway.handle(req, res));
    const served = await listen(own);
    try {
      await running.gateway.close();
      for (const path of ['health', 'ready']) {
        const answer = await get(`${served.url}/__idem/${path}`);
        assert.equal(answer.status, 503, path);
        assert.equal((answer.json as { status: string }).status, 'shutting_down');
      }
    } finally {
      await served.close();
    }
  });
});

describe('the gateway metrics token', () => {
  const token = 'metrics-secret-1234567890';
  let running: Running;

  before(async () => {
    running = await startGateway(new MemoryStore(), { metricsToken: token });
  });
  after(async () => {
    await running.gateway.close();
  });

  it('answers 401 with WWW-Authenticate to a request without a token', async () => {
    const answer = await get(`${running.url}/__idem/metrics`);
    assert.equal(answer.status, 401);
    assert.match(String(answer.headers['www-authenticate']), /^Bearer realm="idem-metrics"$/);
    assert.match(String(answer.headers['content-type']), /^application\/problem\+json/);
    assert.ok(!answer.text.includes('idem_runs_total'));
  });

  it('answers 401 to a wrong token, of any length, and never echoes the right one', async () => {
    for (const wrong of ['nope', `${token}x`, token.replace(/.$/, 'X'), '']) {
      const answer = await get(`${running.url}/__idem/metrics`, { authorization: `Bearer ${wrong}` });
      assert.equal(answer.status, 401, wrong);
      assert.ok(!answer.text.includes(token));
    }
    const basic = await get(`${running.url}/__idem/metrics`, { authorization: `Basic ${token}` });
    assert.equal(basic.status, 401);
  });

  it('answers the metrics to the right bearer token', async () => {
    const answer = await get(`${running.url}/__idem/metrics`, { authorization: `Bearer ${token}` });
    assert.equal(answer.status, 200);
    assert.match(answer.text, /^idem_runs_total \d+$/m);
  });

  it('leaves health and readiness open', async () => {
    assert.equal((await get(`${running.url}/__idem/health`)).status, 200);
    assert.equal((await get(`${running.url}/__idem/ready`)).status, 200);
  });

  it('leaves the metrics open when no token is configured', async () => {
    const open = await startGateway(new MemoryStore());
    try {
      assert.equal((await get(`${open.url}/__idem/metrics`)).status, 200);
    } finally {
      await open.gateway.close();
    }
  });

  it('takes the token from --metrics-token, else IDEM_METRICS_TOKEN, else the config file', () => {
    const upstream = { upstream: 'http://127.0.0.1:3000' };
    const env = { IDEM_METRICS_TOKEN: 'from-env' };
    const file = { metricsToken: 'from-file' };
    assert.equal(resolveServeConfig({ ...upstream, metricsToken: 'from-flag' }, file, env).metricsToken, 'from-flag');
    assert.equal(resolveServeConfig(upstream, file, env).metricsToken, 'from-env');
    assert.equal(resolveServeConfig(upstream, file).metricsToken, 'from-file');
    assert.equal(resolveServeConfig(upstream).metricsToken, undefined);
    assert.throws(
      () => resolveServeConfig(upstream, {}, { IDEM_METRICS_TOKEN: ' ' }),
      /IDEM_METRICS_TOKEN must be a non-empty string/,
    );
  });

  it('requires the token given to idem serve --metrics-token', async () => {
    const idem = await startIdem([
      '--upstream',
      'http://127.0.0.1:1',
      '--no-upstream-check',
      '--store',
      'memory:',
      '--metrics-token',
      token,
    ]);
    try {
      assert.equal((await get(`${idem.url}/__idem/metrics`)).status, 401);
      assert.equal((await get(`${idem.url}/__idem/metrics`, { authorization: `Bearer ${token}` })).status, 200);
      assert.equal((await get(`${idem.url}/__idem/ready`)).status, 200);
    } finally {
      await idem.stop();
    }
  });
});
