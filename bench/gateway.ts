import { type ChildProcess, fork, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { send } from '../src/testing/http-client.js';
import type { UpstreamReady, UpstreamStats } from './gateway-upstream.js';
import { answers, type LoadResult, runLoad } from './http.js';
import { deleteKeys, describe, type StoreName, servers } from './store-targets.js';

export type GatewayMode = 'no key' | 'new keys' | 'replays';
export type GatewayStore = 'sqlite' | 'redis';

/** One load run: straight at the upstream, or through `idem serve`. */
export interface GatewayRow extends LoadResult {
  path: 'direct' | 'gateway';
  /** The gateway's store; `-` when no store is involved (direct, or no key). */
  store: GatewayStore | '-';
  mode: GatewayMode;
  /** Payments the upstream made during the run: as many as requests for new keys, none for replays. */
  upstreamCalls: number;
  /** Throughput relative to calling the upstream directly. */
  xDirectRps?: number;
  /** p99 latency relative to calling the upstream directly. */
  xDirectP99?: number;
}

/** A figure set against the issue's target; measured, never asserted. */
export interface GatewayTarget {
  figure: string;
  measured: number;
  target: string;
  met: boolean;
}

export interface GatewayReport {
  connections: number;
  durationS: number;
  /** The target of the issue, as it was written. */
  goal: string;
  rows: GatewayRow[];
  /** What the pre-run checks found: does a repeated key replay, does a request without a key pass through? */
  verified: { gateway: string; ok: boolean; note: string }[];
  targets: GatewayTarget[];
  where: Record<string, string>;
  skipped: { store: GatewayStore; reason: string }[];
  notes: string[];
}

export interface GatewayBenchOptions {
  stores: StoreName[];
  quick: boolean;
  log: (line: string) => void;
}

const CONNECTIONS = 32;
const PATH = '/payments';
const BODY = JSON.stringify({ amount: 500, currency: 'eur' });
export const GATEWAY_GOAL = 'gateway new keys on Redis within 20% of direct';
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The gateway part: autocannon against a small JSON upstream (POST /payments, 201), directly and
 * through `idem serve`: without a key (the proxy hop alone), then on SQLite and on Redis with a
 * new Idempotency-Key on every request, then replaying one key.
 */
export async function benchGateway(options: GatewayBenchOptions): Promise<GatewayReport> {
  const { log } = options;
  const durationS = options.quick ? 1 : 5;
  const warmupS = options.quick ? 0.3 : 1;
  const report: GatewayReport = {
    connections: CONNECTIONS,
    durationS,
    goal: GATEWAY_GOAL,
    rows: [],
    verified: [],
    targets: [],
    where: {},
    skipped: [],
    notes: [],
  };
  const directory = mkdtempSync(join(tmpdir(), 'idem-bench-gateway-'));
  const upstream = await startUpstream();
  const measure = async (
    path: GatewayRow['path'],
    store: GatewayRow['store'],
    mode: GatewayMode,
    url: string,
    key: () => string | undefined,
  ) => {
    const before = await upstream.payments();
    const result: LoadResult = await runLoad({ url, path: PATH, body: BODY, durationS, key, connections: CONNECTIONS });
    const row: GatewayRow = { path, store, mode, ...result, upstreamCalls: (await upstream.payments()) - before };
    report.rows.push(row);
    const bad = row.non2xx + row.errors > 0 ? `, ${row.non2xx} non-2xx, ${row.errors} errors` : '';
    log(
      `  ${`${path} ${store === '-' ? '' : `${store} `}${mode}`.padEnd(24)}: ${Math.round(row.requestsPerSec).toLocaleString('en-US')} req/s, p99 ${row.p99Ms.toFixed(2)} ms, upstream calls ${row.upstreamCalls}${bad}`,
    );
  };

  try {
    // Directly: the upstream alone, the figure every other row is set against.
    await runLoad({ url: upstream.url, path: PATH, body: BODY, durationS: warmupS, key: () => undefined });
    await measure('direct', '-', 'no key', upstream.url, () => undefined);

    // No key: the gateway forwards without asking its store, so the store is memory: and idle.
    {
      const gateway = await startGateway(upstream.url, 'memory:');
      try {
        const check = await verifyPassThrough(gateway.url, upstream);
        report.verified.push({ gateway: 'gateway, no key', ...check });
        log(`  gateway, no key: ${check.ok ? 'pass-through verified' : 'PASS-THROUGH NOT VERIFIED'} (${check.note})`);
        await runLoad({ url: gateway.url, path: PATH, body: BODY, durationS: warmupS, key: () => undefined });
        await measure('gateway', '-', 'no key', gateway.url, () => undefined);
      } finally {
        await gateway.stop();
      }
      noteOutput(report, 'gateway (memory:, no key)', gateway.output());
    }

    for (const store of ['sqlite', 'redis'] as const) {
      if (!options.stores.includes(store)) continue;
      let storeUrl: string;
      let cleanUp = async () => {};
      if (store === 'sqlite') {
        const file = join(directory, 'gateway.db');
        storeUrl = `sqlite:${file}`;
        report.where.sqlite = `${file} (a new file; WAL)`;
      } else {
        const up = await answers(servers.redis);
        if (up !== true) {
          report.skipped.push({ store, reason: up });
          log(`  gateway redis: skipped (${up})`);
          continue;
        }
        // A prefix of this run's own, so nothing else on the server is touched; deleted afterwards.
        const prefix = `idem_bench_gateway_${randomUUID().slice(0, 8)}:`;
        storeUrl = `${servers.redis}${servers.redis.includes('?') ? '&' : '?'}prefix=${prefix}`;
        report.where.redis = `${servers.redis}, keys ${prefix}*`;
        cleanUp = async () => {
          const deleted = await deleteRedisKeys(prefix);
          report.where.redis += ` (${deleted} deleted afterwards)`;
        };
      }
      const gateway = await startGateway(upstream.url, storeUrl);
      try {
        const check = await verifyReplay(gateway.url, upstream);
        report.verified.push({ gateway: `gateway on ${store}`, ...check });
        log(`  gateway ${store}: ${check.ok ? 'replay verified' : 'REPLAY NOT VERIFIED'} (${check.note})`);
        const run = randomUUID().slice(0, 8);
        let counter = 0;
        const fresh = () => `g-${run}-${counter++}`;
        await runLoad({ url: gateway.url, path: PATH, body: BODY, durationS: warmupS, key: fresh });
        await measure('gateway', store, 'new keys', gateway.url, fresh);
        // The one key every request repeats is completed first, so every measured request replays.
        const replayKey = `replay-${randomUUID()}`;
        await post(gateway.url, replayKey);
        await measure('gateway', store, 'replays', gateway.url, () => replayKey);
      } finally {
        await gateway.stop();
        await cleanUp().catch((error: unknown) => log(`  cleanup failed: ${describe(error)}`));
      }
      noteOutput(report, `gateway (${store})`, gateway.output());
    }
  } finally {
    await upstream.stop();
    rmSync(directory, { recursive: true, force: true });
  }

  const direct = report.rows.find((row) => row.path === 'direct');
  if (direct !== undefined) {
    for (const row of report.rows) {
      row.xDirectRps = row.requestsPerSec / direct.requestsPerSec;
      row.xDirectP99 = row.p99Ms / direct.p99Ms;
    }
  }
  const redisNew = report.rows.find((row) => row.store === 'redis' && row.mode === 'new keys');
  if (redisNew?.xDirectRps !== undefined && redisNew.xDirectP99 !== undefined) {
    // "Within 20%" read both ways: throughput at least 0.80x direct, p99 at most 1.20x direct.
    report.targets.push(
      {
        figure: 'gateway new keys on Redis, req/s x direct',
        measured: redisNew.xDirectRps,
        target: '>= 0.80x (within 20%)',
        met: redisNew.xDirectRps >= 0.8,
      },
      {
        figure: 'gateway new keys on Redis, p99 x direct',
        measured: redisNew.xDirectP99,
        target: '<= 1.20x (within 20%)',
        met: redisNew.xDirectP99 <= 1.2,
      },
    );
  } else {
    report.notes.push(`the target (${GATEWAY_GOAL}) was not measured: no Redis run.`);
  }
  return report;
}

/** The same key twice: the second answer must be the first one, marked replayed, with one payment made. */
async function verifyReplay(url: string, upstream: Upstream): Promise<{ ok: boolean; note: string }> {
  const key = `verify-${randomUUID()}`;
  try {
    const before = await upstream.payments();
    const first = await post(url, key);
    const second = await post(url, key);
    const calls = (await upstream.payments()) - before;
    const problems: string[] = [];
    if (first.status !== 201) problems.push(`first answer ${first.status}`);
    if (first.headers['idempotent-replayed'] === 'true') problems.push('the first answer says it was replayed');
    if (second.status !== 201) problems.push(`second answer ${second.status}`);
    if (second.headers['idempotent-replayed'] !== 'true') {
      problems.push(`Idempotent-Replayed: ${String(second.headers['idempotent-replayed'] ?? '(absent)')}`);
    }
    if (second.text !== first.text) problems.push('the second body differs from the first');
    if (calls !== 1) problems.push(`the upstream was called ${calls} times`);
    if (problems.length > 0) return { ok: false, note: `${problems.join('; ')}: ${second.text.slice(0, 120)}` };
    return {
      ok: true,
      note: `second request: ${second.status}, Idempotent-Replayed: true, the first body back (${idOf(first.json)}); the upstream was called once`,
    };
  } catch (error) {
    return { ok: false, note: describe(error) };
  }
}

/** Two requests without a key: both must reach the upstream, neither be a replay. */
async function verifyPassThrough(url: string, upstream: Upstream): Promise<{ ok: boolean; note: string }> {
  try {
    const before = await upstream.payments();
    const first = await post(url, undefined);
    const second = await post(url, undefined);
    const calls = (await upstream.payments()) - before;
    const problems: string[] = [];
    for (const answer of [first, second]) {
      if (answer.status !== 201) problems.push(`answer ${answer.status}`);
      if (answer.headers['idempotent-replayed'] !== undefined) problems.push('an Idempotent-Replayed header');
    }
    if (calls !== 2) problems.push(`the upstream was called ${calls} times`);
    if (problems.length > 0) return { ok: false, note: `${problems.join('; ')}: ${second.text.slice(0, 120)}` };
    return {
      ok: true,
      note: `both forwarded (${idOf(first.json)}, ${idOf(second.json)}), no Idempotent-Replayed header`,
    };
  } catch (error) {
    return { ok: false, note: describe(error) };
  }
}

const idOf = (json: unknown) => String((json as { id?: unknown } | undefined)?.id);

function post(url: string, key: string | undefined) {
  return send(`${url}${PATH}`, {
    headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': key }) },
    body: BODY,
  });
}

/** Lines the gateway is expected to print; anything else goes into the notes. */
const EXPECTED_OUTPUT = /^idem: (gateway listening on |health |note: memory: |SIGTERM: |stopped: )/;

function noteOutput(report: GatewayReport, who: string, output: string): void {
  const lines = output
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !EXPECTED_OUTPUT.test(line));
  if (lines.length > 0) {
    report.notes.push(
      `${who} printed ${lines.length} unexpected line(s), first: ${JSON.stringify(lines[0]?.slice(0, 160))}`,
    );
  }
}

interface Upstream {
  url: string;
  /** Payments made so far. */
  payments(): Promise<number>;
  stop(): Promise<void>;
}

/** Starts bench/gateway-upstream.ts in a child process and waits for its port. */
async function startUpstream(): Promise<Upstream> {
  const entry = fileURLToPath(new URL('./gateway-upstream.ts', import.meta.url));
  const child = fork(entry, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const output = collect(child);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the upstream did not start in 20 s: ${output()}`)), 20_000);
    child.once('message', (message) => {
      clearTimeout(timer);
      resolve((message as UpstreamReady).port);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the upstream exited with ${code}: ${output()}`));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    async payments() {
      const answer = await send(`${url}/stats`, { method: 'GET' });
      return (answer.json as UpstreamStats).payments;
    },
    stop: () => stop(child),
  };
}

interface Gateway {
  url: string;
  /** What the gateway wrote to stdout and stderr. */
  output(): string;
  stop(): Promise<void>;
}

/** Starts `idem serve` (src/cli/main.ts under tsx) on a free port and waits for its "listening" line. */
async function startGateway(upstream: string, store: string): Promise<Gateway> {
  const args = ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--upstream', upstream, '--store', store];
  args.push('--port', '0', '--grace', '2s');
  // Measured as configured by default: stored responses in the clear.
  const { IDEM_ENCRYPTION_KEY: _ignored, ...env } = process.env;
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collect(child);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`idem serve did not start in 30 s: ${output()}`)), 30_000);
    const onData = () => {
      const found = /gateway listening on (http:\/\/\S+)/.exec(output());
      if (found?.[1] === undefined) return;
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      resolve(found[1]);
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`idem serve --store ${store} exited with ${code}: ${output().trim()}`));
    });
  });
  return { url, output, stop: () => stop(child) };
}

/** Keeps what the child writes (up to 64 kB); returns a reader. */
function collect(child: ChildProcess): () => string {
  let output = '';
  const keep = (chunk: Buffer) => {
    if (output.length < 64_000) output += chunk.toString('utf8');
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => output;
}

/** SIGTERM, then SIGKILL if the child has not exited 5 s later. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

async function deleteRedisKeys(prefix: string): Promise<number> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(servers.redis, { maxRetriesPerRequest: 1, connectTimeout: 2000 });
  try {
    return await deleteKeys(redis, prefix);
  } finally {
    redis.disconnect();
  }
}
