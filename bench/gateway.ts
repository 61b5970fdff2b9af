import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { send } from '../src/testing/http-client.js';
import { startGateway, startUpstream, type Upstream } from './gateway-processes.js';
import { answers } from './http.js';
import { type LoadResult, runLoad } from './load.js';
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

/**
 * The gateway part: autocannon against a small JSON upstream (POST /payments, 201), directly and
 * through `idem serve`: without a key (the proxy hop alone), then on SQLite and on Redis with a
 * new Idempotency-Key on every request, then replaying one key.
 */
export async function benchGateway(options: GatewayBenchOptions): Promise<GatewayReport> {
  const durationS = options.quick ? 1 : 5;
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
  const run: GatewayRun = { report, upstream, durationS, warmupS: options.quick ? 0.3 : 1, log: options.log };
  try {
    // Directly: the upstream alone, the figure every other row is set against.
    await warmUp(run, upstream.url, () => undefined);
    await measure(run, 'direct', '-', 'no key', upstream.url, () => undefined);
    await benchNoKey(run);
    for (const store of ['sqlite', 'redis'] as const) {
      if (!options.stores.includes(store)) continue;
      const target = await storeTarget(run, store, directory);
      if (target !== undefined) await benchStore(run, store, target);
    }
  } finally {
    await upstream.stop();
    rmSync(directory, { recursive: true, force: true });
  }
  compareToDirect(report.rows);
  setTargets(report);
  return report;
}

/** What every part of one gateway bench shares. */
interface GatewayRun {
  report: GatewayReport;
  upstream: Upstream;
  durationS: number;
  warmupS: number;
  log: (line: string) => void;
}

/** A store the gateway runs on: its `--store` URL, and how to drop what the run left in it. */
interface StoreTarget {
  url: string;
  cleanUp: () => Promise<void>;
}

/** A short unmeasured run, so the measured one starts warm. */
async function warmUp(run: GatewayRun, url: string, key: () => string | undefined): Promise<void> {
  await runLoad({ url, path: PATH, body: BODY, durationS: run.warmupS, key });
}

/** One measured run: its row, with the payments the upstream made meanwhile, goes into the report. */
async function measure(
  run: GatewayRun,
  path: GatewayRow['path'],
  store: GatewayRow['store'],
  mode: GatewayMode,
  url: string,
  key: () => string | undefined,
): Promise<void> {
  const { upstream } = run;
  const before = await upstream.payments();
  const result: LoadResult = await runLoad({
    url,
    path: PATH,
    body: BODY,
    durationS: run.durationS,
    key,
    connections: CONNECTIONS,
  });
  const row: GatewayRow = { path, store, mode, ...result, upstreamCalls: (await upstream.payments()) - before };
  run.report.rows.push(row);
  const bad = row.non2xx + row.errors > 0 ? `, ${row.non2xx} non-2xx, ${row.errors} errors` : '';
  run.log(
    `  ${`${path} ${store === '-' ? '' : `${store} `}${mode}`.padEnd(24)}: ${Math.round(row.requestsPerSec).toLocaleString('en-US')} req/s, p99 ${row.p99Ms.toFixed(2)} ms, upstream calls ${row.upstreamCalls}${bad}`,
  );
}

/** No key: the gateway forwards without asking its store, so the store is memory: and idle. */
async function benchNoKey(run: GatewayRun): Promise<void> {
  const { report, upstream, log } = run;
  const gateway = await startGateway(upstream.url, 'memory:');
  try {
    const check = await verifyPassThrough(gateway.url, upstream);
    report.verified.push({ gateway: 'gateway, no key', ...check });
    log(`  gateway, no key: ${check.ok ? 'pass-through verified' : 'PASS-THROUGH NOT VERIFIED'} (${check.note})`);
    await warmUp(run, gateway.url, () => undefined);
    await measure(run, 'gateway', '-', 'no key', gateway.url, () => undefined);
  } finally {
    await gateway.stop();
  }
  noteOutput(report, 'gateway (memory:, no key)', gateway.output());
}

/**
 * The store URL for the gateway on `store`, noted in `report.where`: a new SQLite file in
 * `directory`, or keys under a prefix of this run's own on Redis. `undefined` when Redis does not
 * answer (noted in `report.skipped`).
 */
async function storeTarget(run: GatewayRun, store: GatewayStore, directory: string): Promise<StoreTarget | undefined> {
  const { report } = run;
  if (store === 'sqlite') {
    const file = join(directory, 'gateway.db');
    report.where.sqlite = `${file} (a new file; WAL)`;
    return { url: `sqlite:${file}`, cleanUp: async () => {} };
  }
  const up = await answers(servers.redis);
  if (up !== true) {
    report.skipped.push({ store, reason: up });
    run.log(`  gateway redis: skipped (${up})`);
    return undefined;
  }
  // A prefix of this run's own, so nothing else on the server is touched; deleted afterwards.
  const prefix = `idem_bench_gateway_${randomUUID().slice(0, 8)}:`;
  report.where.redis = `${servers.redis}, keys ${prefix}*`;
  return {
    url: `${servers.redis}${servers.redis.includes('?') ? '&' : '?'}prefix=${prefix}`,
    cleanUp: async () => {
      const deleted = await deleteRedisKeys(prefix);
      report.where.redis += ` (${deleted} deleted afterwards)`;
    },
  };
}

/** The gateway on one store: a new key on every request, then one key replayed. */
async function benchStore(run: GatewayRun, store: GatewayStore, target: StoreTarget): Promise<void> {
  const { report, upstream, log } = run;
  const gateway = await startGateway(upstream.url, target.url);
  try {
    const check = await verifyReplay(gateway.url, upstream);
    report.verified.push({ gateway: `gateway on ${store}`, ...check });
    log(`  gateway ${store}: ${check.ok ? 'replay verified' : 'REPLAY NOT VERIFIED'} (${check.note})`);
    const id = randomUUID().slice(0, 8);
    let counter = 0;
    const fresh = () => `g-${id}-${counter++}`;
    await warmUp(run, gateway.url, fresh);
    await measure(run, 'gateway', store, 'new keys', gateway.url, fresh);
    // The one key every request repeats is completed first, so every measured request replays.
    const replayKey = `replay-${randomUUID()}`;
    await post(gateway.url, replayKey);
    await measure(run, 'gateway', store, 'replays', gateway.url, () => replayKey);
  } finally {
    await gateway.stop();
    await target.cleanUp().catch((error: unknown) => log(`  cleanup failed: ${describe(error)}`));
  }
  noteOutput(report, `gateway (${store})`, gateway.output());
}

/** Sets each row's throughput and p99 relative to calling the upstream directly. */
function compareToDirect(rows: GatewayRow[]): void {
  const direct = rows.find((row) => row.path === 'direct');
  if (direct === undefined) return;
  for (const row of rows) {
    row.xDirectRps = row.requestsPerSec / direct.requestsPerSec;
    row.xDirectP99 = row.p99Ms / direct.p99Ms;
  }
}

/** Sets the Redis new-keys run against the issue's target, or notes that there was none. */
function setTargets(report: GatewayReport): void {
  const redisNew = report.rows.find((row) => row.store === 'redis' && row.mode === 'new keys');
  if (redisNew?.xDirectRps === undefined || redisNew.xDirectP99 === undefined) {
    report.notes.push(`the target (${GATEWAY_GOAL}) was not measured: no Redis run.`);
    return;
  }
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
    headers: {
      'content-type': 'application/json',
      authorization: 'Bearer bench-client',
      ...(key === undefined ? {} : { 'idempotency-key': key }),
    },
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

async function deleteRedisKeys(prefix: string): Promise<number> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(servers.redis, { maxRetriesPerRequest: 1, connectTimeout: 2000 });
  try {
    return await deleteKeys(redis, prefix);
  } finally {
    redis.disconnect();
  }
}
