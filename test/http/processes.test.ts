import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { Store } from '../../src/core/store.js';
import { callerScope, type HttpRequestInfo, httpStoreKey } from '../../src/http/index.js';
import * as postgresFactory from '../stores/postgres.factory.js';
import * as redisFactory from '../stores/redis.factory.js';
import { HttpPool, mapLimit, type PooledResponse } from './fixtures/client.js';
import type { ServerJob } from './fixtures/express-server.js';
import { CALLER } from './serve.js';

const serverModule = new URL('./fixtures/express-server.ts', import.meta.url).pathname;
const NAMESPACE = 'http_processes';
const RUNS_TABLE = 'idem_http_process_runs';
const RUNS_PREFIX = 'idem_test:http_process_runs:';

interface ServerProcess {
  child: ChildProcess;
  port: number;
  url: string;
  /** Resolves with the next `running <pid>` line. */
  nextRun(): Promise<string>;
  exited: Promise<NodeJS.Signals | number | null>;
}

/** Starts one Express server process with this process's loader flags (tsx), resolves once it listens. */
async function startServer(job: ServerJob): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...process.execArgv, serverModule, JSON.stringify(job)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? code)),
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  const nextLine = async (prefix: string): Promise<string> => {
    for (;;) {
      const next = await Promise.race([lines.next(), exited.then(() => null)]);
      if (next === null || next.done) throw new Error(`server process exited: ${stderr || '(no output)'}`);
      if (next.value.startsWith(prefix)) return next.value.slice(prefix.length);
    }
  };
  const port = Number(await nextLine('listening '));
  return { child, port, url: `http://127.0.0.1:${port}`, nextRun: () => nextLine('running '), exited };
}

async function stopServers(servers: ServerProcess[]): Promise<void> {
  await Promise.all(
    servers.map(async (server) => {
      if (server.child.exitCode !== null || server.child.signalCode !== null) return;
      server.child.kill('SIGTERM');
      const stopped = await Promise.race([server.exited.then(() => true), sleep(5000).then(() => false)]);
      if (!stopped) server.child.kill('SIGKILL');
    }),
  );
}

/** Where the handler counts its runs, readable from this process. */
interface Backend {
  name: string;
  job: ServerJob['backend'];
  factory: { createStore(namespace: string): Promise<Store>; dropStore(namespace: string): Promise<void> };
  setUp(): Promise<void>;
  /** The pids of the processes that really ran the handler for `key`. */
  runsOf(key: string): Promise<number[]>;
  tearDown(): Promise<void>;
}

function postgresBackend(): Backend {
  let pool: pg.Pool | undefined;
  return {
    name: 'PostgreSQL',
    job: 'postgres',
    factory: postgresFactory,
    async setUp() {
      pool = new pg.Pool({ connectionString: postgresFactory.postgresUrl, max: 2 });
      await pool.query(`DROP TABLE IF EXISTS ${RUNS_TABLE}`);
      await pool.query(
        `CREATE TABLE ${RUNS_TABLE} (id bigserial PRIMARY KEY, idem_key text NOT NULL, pid integer NOT NULL)`,
      );
    },
    async runsOf(key) {
      const result = await (pool as pg.Pool).query<{ pid: number }>(
        `SELECT pid FROM ${RUNS_TABLE} WHERE idem_key = $1 ORDER BY id`,
        [key],
      );
      return result.rows.map((row) => row.pid);
    },
    async tearDown() {
      await pool?.query(`DROP TABLE IF EXISTS ${RUNS_TABLE}`);
      await pool?.end();
    },
  };
}

function redisBackend(): Backend {
  let redis: Redis | undefined;
  return {
    name: 'Redis',
    job: 'redis',
    factory: redisFactory,
    async setUp() {
      redis = new Redis(redisFactory.redisUrl, { maxRetriesPerRequest: 1 });
    },
    async runsOf(key) {
      return (await (redis as Redis).lrange(`${RUNS_PREFIX}${key}`, 0, -1)).map(Number);
    },
    async tearDown() {
      await redis?.quit();
    },
  };
}

type Answer = { kind: 'ran' | 'replay' | 'in_progress'; response: PooledResponse };

/** Sorts one answer to a repeated key; anything else (a 5xx above all) fails the test. */
function classify(response: PooledResponse): Answer {
  if (response.status === 201) {
    return { kind: response.headers['idempotent-replayed'] === 'true' ? 'replay' : 'ran', response };
  }
  if (response.status === 409) {
    assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
    assert.equal((JSON.parse(response.text) as { type: string }).type, 'urn:idem:problem:in-progress');
    assert.ok(Number(response.headers['retry-after']) >= 1, 'a 409 says when to retry');
    return { kind: 'in_progress', response };
  }
  assert.fail(`unexpected answer ${response.status}: ${response.text}`);
}

const orderBody = JSON.stringify({ amount: 4200, currency: 'eur' });
/** What the middleware sees of an order request, for the store key of its record. */
const orderInfo: HttpRequestInfo = {
  method: 'POST',
  route: '/orders',
  body: undefined,
  header: (name) => (CALLER as Record<string, string>)[name],
};
const orderHeaders = (key: string) => ({
  ...CALLER,
  'idempotency-key': `"${key}"`,
  'content-type': 'application/json',
});

for (const makeBackend of [postgresBackend, redisBackend]) {
  const backend = makeBackend();

  describe(`four Express processes sharing ${backend.name}`, () => {
    let store: Store;
    before(async () => {
      await backend.setUp();
      store = await backend.factory.createStore(NAMESPACE);
    });
    after(async () => {
      await store.close();
      await backend.factory.dropStore(NAMESPACE);
      await backend.tearDown();
    });

    const jobOf = (overrides: Partial<ServerJob>): ServerJob => ({
      backend: backend.job,
      namespace: NAMESPACE,
      runsAt: backend.job === 'postgres' ? RUNS_TABLE : RUNS_PREFIX,
      leaseMs: 10_000,
      heartbeatMs: 3000,
      handlerMs: 100,
      hang: false,
      ...overrides,
    });
    const recordOf = (key: string) =>
      store.get(httpStoreKey({ scope: callerScope()(orderInfo), method: 'POST', route: '/orders', key }));

    it('runs the handler exactly once for 500 concurrent requests with one key, spread over 4 processes', {
      timeout: 60_000,
    }, async (t) => {
      const startedAt = Date.now();
      const servers = await Promise.all(Array.from({ length: 4 }, () => startServer(jobOf({}))));
      t.diagnostic(`4 server processes up in ${Date.now() - startedAt} ms`);
      const pool = new HttpPool(25);
      try {
        const key = randomUUID();
        const requests = Array.from({ length: 500 }, (_, i) => servers[i % servers.length] as ServerProcess);
        const answers = await mapLimit(requests, 100, async (server) =>
          classify(await pool.send(`${server.url}/orders`, { headers: orderHeaders(key), body: orderBody })),
        );

        const runs = await backend.runsOf(key);
        assert.equal(runs.length, 1, `the handler ran ${runs.length} times across the processes`);
        const ran = answers.filter((a) => a.kind === 'ran');
        assert.equal(ran.length, 1, 'exactly one answer is the first run');
        const first = (ran[0] as Answer).response;
        assert.equal(
          (JSON.parse(first.text) as { pid: number }).pid,
          runs[0],
          'the run that answered is the one counted',
        );
        for (const answer of answers.filter((a) => a.kind === 'replay')) {
          assert.equal(answer.response.text, first.text, 'every replay is the stored body');
        }
        const replays = answers.filter((a) => a.kind === 'replay').length;
        t.diagnostic(`1 run, ${replays} replays, ${500 - 1 - replays} answered 409`);

        // Once the first has finished, every process replays it.
        for (const server of servers) {
          const again = classify(
            await pool.send(`${server.url}/orders`, { headers: orderHeaders(key), body: orderBody }),
          );
          assert.equal(again.kind, 'replay');
          assert.equal(again.response.text, first.text);
        }
        const record = await recordOf(key);
        assert.equal(record?.state, 'completed');
        assert.equal(record?.attempts, 1);
        assert.equal((await backend.runsOf(key)).length, 1);
      } finally {
        pool.close();
        await stopServers(servers);
      }
    });

    it('lets exactly one process take over after the one running the handler is killed, once its lease runs out', {
      timeout: 60_000,
    }, async (t) => {
      const leaseMs = 1000;
      const heartbeatMs = 250;
      const servers = await Promise.all(
        Array.from({ length: 4 }, (_, i) => startServer(jobOf({ leaseMs, heartbeatMs, handlerMs: 50, hang: i === 0 }))),
      );
      const [doomed, ...survivors] = servers as [ServerProcess, ...ServerProcess[]];
      const pool = new HttpPool(4);
      try {
        const key = randomUUID();
        const ask = (server: ServerProcess) =>
          pool.send(`${server.url}/orders`, { headers: orderHeaders(key), body: orderBody });
        const askSurvivors = async () => {
          const sentAt = Date.now();
          const answers = await Promise.all(survivors.map(async (server) => classify(await ask(server))));
          return answers.map((answer) => ({ ...answer, sentAt, receivedAt: Date.now() }));
        };

        const running = doomed.nextRun();
        const lost = ask(doomed).then(
          (response) => assert.fail(`the killed process answered ${response.status}`),
          () => 'no answer',
        );
        assert.equal(Number(await running), doomed.child.pid);
        const runningSince = Date.now();

        // The holder is alive: its heartbeat keeps the lease well past leaseMs, and every retry is 409.
        while (Date.now() < runningSince + 1.5 * leaseMs) {
          for (const answer of await askSurvivors()) assert.equal(answer.kind, 'in_progress');
          await sleep(50);
        }

        doomed.child.kill('SIGKILL');
        const killedAt = Date.now();
        assert.equal(await doomed.exited, 'SIGKILL');
        assert.equal(await lost, 'no answer');
        // Nothing extends the lease any more: this is when it runs out.
        const held = await recordOf(key);
        assert.equal(held?.state, 'in_progress');
        const leaseEndsAt = held?.leaseExpiresAtMs ?? 0;
        assert.ok(leaseEndsAt > runningSince + leaseMs, 'the heartbeat extended the lease past its first leaseMs');

        const answers: (Answer & { sentAt: number; receivedAt: number })[] = [];
        while (!answers.some((a) => a.kind === 'ran') && Date.now() < leaseEndsAt + 5000) {
          answers.push(...(await askSurvivors()));
          await sleep(20);
        }
        const ran = answers.filter((a) => a.kind === 'ran');
        assert.equal(ran.length, 1, 'exactly one retry took over');
        const takeover = ran[0] as (typeof answers)[number];
        // A claim takes over only at or after leaseEndsAt, and it happens before its answer arrives.
        assert.ok(takeover.receivedAt >= leaseEndsAt, `taken over ${leaseEndsAt - takeover.receivedAt} ms early`);
        for (const answer of answers) {
          if (answer.receivedAt < leaseEndsAt) assert.equal(answer.kind, 'in_progress');
        }

        t.diagnostic(
          `killed ${leaseEndsAt - killedAt} ms before the lease ran out; taken over ${takeover.receivedAt - killedAt} ms after the kill, after ${answers.length - 1} answers of 409`,
        );
        const runs = await backend.runsOf(key);
        assert.equal(runs.length, 2, 'the killed run and the one takeover');
        assert.equal(runs[0], doomed.child.pid);
        assert.ok(
          survivors.some((s) => s.child.pid === runs[1]),
          'the takeover ran on a survivor',
        );

        const later = await mapLimit(
          Array.from({ length: 30 }, (_, i) => survivors[i % survivors.length]),
          6,
          (server) => ask(server as ServerProcess).then(classify),
        );
        for (const answer of later) {
          assert.equal(answer.kind, 'replay');
          assert.equal(
            answer.response.text,
            takeover.response.text,
            'every later request replays the one stored answer',
          );
        }
        const record = await recordOf(key);
        assert.equal(record?.state, 'completed');
        assert.equal(record?.attempts, 2);
        assert.equal((await backend.runsOf(key)).length, 2);
      } finally {
        pool.close();
        await stopServers(servers);
      }
    });
  });
}
