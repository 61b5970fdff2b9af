import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { send } from '../src/testing/http-client.js';
import {
  type Gateway as GatewayProcess,
  NGINX,
  startGateway,
  startMinimalProxy,
  startNginx,
  startUpstream,
  type Upstream,
} from './gateway-processes.js';
import { answers } from './http.js';
import { type LoadResult, runLoad } from './load.js';
import { treeCpuUs } from './process-cpu.js';
import { deleteKeys, describe, type StoreName, servers } from './store-targets.js';

export type GatewayMode = 'no key' | 'new keys' | 'replays';
export type GatewayStore = 'sqlite' | 'redis';

/** What a request goes through: nothing, a yardstick proxy, or `idem serve`. */
export type GatewayVia = 'direct' | 'node proxy' | 'nginx' | 'idem serve' | 'idem serve --workers 2';

/** One variant's median run over the interleaved rounds. */
export interface GatewayRow extends LoadResult {
  via: GatewayVia;
  /** The gateway's store; `-` when no store is involved (direct, the yardsticks, or no key). */
  store: GatewayStore | '-';
  mode: GatewayMode;
  /** Payments the upstream made during the run: as many as requests for new keys, none for replays. */
  upstreamCalls: number;
  /**
   * CPU time of the proxy's processes (all of them, workers included) per response, in us, from
   * /proc; for `direct`, the upstream's. Median over the rounds.
   */
  serverCpuUs: number;
  /** CPU time of the upstream per response, in us (median over the rounds). */
  upstreamCpuUs: number;
  /**
   * Cores the proxy's processes kept busy during the run: their CPU time over the run's wall time
   * (median over the rounds). Near 2 on two cores shows `--workers 2` uses both.
   */
  serverCores: number;
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
  /** Each variant ran this many times, the rounds interleaved; each row is its median run. */
  rounds: number;
  /** The target of the issue, as it was written. */
  goal: string;
  rows: GatewayRow[];
  /** What the pre-run checks found: does a repeated key replay, does a request without a key pass through? */
  verified: { gateway: string; ok: boolean; note: string }[];
  targets: GatewayTarget[];
  where: Record<string, string>;
  skipped: { store: string; reason: string }[];
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
export const GATEWAY_GOAL =
  'gateway pass-through no costlier than a minimal Node proxy (server CPU per request, and throughput)';

/** One thing to load in every round: where to send, which keys, and which processes to time. */
interface Variant {
  via: GatewayVia;
  store: GatewayStore | '-';
  mode: GatewayMode;
  url: string;
  key: () => string | undefined;
  /** The process whose tree's CPU is the server's. */
  pid: number;
}

/** A process the run started and stops at the end. */
interface Started {
  stop(): Promise<void>;
}

/**
 * The gateway part: autocannon against a small JSON upstream (POST /payments, 201): directly,
 * through a minimal node:http proxy, through nginx (when installed), and through `idem serve`
 * without a key, then on SQLite and Redis with a new key on every request and replaying one key,
 * and `idem serve --workers 2` on Redis. Every variant runs once per round, the rounds
 * interleaved, so load from elsewhere falls on all of them alike; each row is its median run.
 */
export async function benchGateway(options: GatewayBenchOptions): Promise<GatewayReport> {
  const durationS = options.quick ? 1 : 3;
  const rounds = options.quick ? 1 : 5;
  const report: GatewayReport = {
    connections: CONNECTIONS,
    durationS,
    rounds,
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
  const run: GatewayRun = { report, upstream, directory, log: options.log, started: [], cleanUps: [] };
  try {
    const variants = await startVariants(run, options.stores);
    const runs = new Map<Variant, RoundResult[]>(variants.map((variant) => [variant, []]));
    for (let round = 1; round <= rounds; round++) {
      if (rounds > 1) options.log(`  round ${round} of ${rounds}`);
      for (const variant of variants) {
        await warmUp(variant, options.quick ? 0.3 : 0.5);
        const result = await measure(run, variant, durationS);
        runs.get(variant)?.push(result);
      }
    }
    for (const variant of variants) report.rows.push(medianRow(variant, runs.get(variant) ?? []));
    setTargets(report, variants, runs);
  } finally {
    for (const started of run.started.reverse()) await started.stop().catch(() => {});
    for (const cleanUp of run.cleanUps)
      await cleanUp().catch((error: unknown) => options.log(`  cleanup failed: ${describe(error)}`));
    await upstream.stop();
    rmSync(directory, { recursive: true, force: true });
  }
  compareToDirect(report.rows);
  return report;
}

/** What every part of one gateway bench shares. */
interface GatewayRun {
  report: GatewayReport;
  upstream: Upstream;
  directory: string;
  log: (line: string) => void;
  started: Started[];
  cleanUps: (() => Promise<void>)[];
}

/** Starts every proxy and gateway once, checks them, and lists the variants to load in each round. */
async function startVariants(run: GatewayRun, stores: StoreName[]): Promise<Variant[]> {
  const { upstream } = run;
  const none = () => undefined;
  const variants: Variant[] = [
    { via: 'direct', store: '-', mode: 'no key', url: upstream.url, key: none, pid: upstream.pid },
  ];
  const proxy = await startMinimalProxy(upstream.url);
  run.started.push(proxy);
  variants.push({ via: 'node proxy', store: '-', mode: 'no key', url: proxy.url, key: none, pid: proxy.pid });
  const nginx = await startNginxVariant(run);
  if (nginx !== undefined) variants.push(nginx);
  // No key: the gateway forwards without asking its store, so the store is memory: and idle.
  const noKey = await startChecked(run, 'idem serve', 'memory:', []);
  if (noKey !== undefined) {
    variants.push({ via: 'idem serve', store: '-', mode: 'no key', url: noKey.url, key: none, pid: noKey.pid });
  }
  for (const store of ['sqlite', 'redis'] as const) {
    if (!stores.includes(store)) continue;
    const target = await storeTarget(run, store, 'single');
    if (target === undefined) continue;
    const gateway = await startChecked(run, 'idem serve', target.url, [], store);
    if (gateway !== undefined) variants.push(...keyedVariants('idem serve', store, gateway));
  }
  if (stores.includes('redis')) {
    const target = await storeTarget(run, 'redis', 'workers');
    const gateway =
      target && (await startChecked(run, 'idem serve --workers 2', target.url, ['--workers', '2'], 'redis'));
    if (gateway) {
      variants.push({
        via: 'idem serve --workers 2',
        store: '-',
        mode: 'no key',
        url: gateway.url,
        key: none,
        pid: gateway.pid,
      });
      variants.push(...keyedVariants('idem serve --workers 2', 'redis', gateway));
    }
  }
  return variants;
}

/** nginx in front of the upstream, when installed: the reference for what the machine allows. */
async function startNginxVariant(run: GatewayRun): Promise<Variant | undefined> {
  const { upstream, report, log } = run;
  if (!existsSync(NGINX)) {
    report.skipped.push({ store: 'nginx', reason: `${NGINX} is not installed (apt-get install nginx-light)` });
    log(`  nginx: skipped, ${NGINX} is not installed`);
    return undefined;
  }
  try {
    const nginx = await startNginx(upstream.url, run.directory, await freePort());
    run.started.push(nginx);
    return { via: 'nginx', store: '-', mode: 'no key', url: nginx.url, key: () => undefined, pid: nginx.pid };
  } catch (error) {
    report.skipped.push({ store: 'nginx', reason: describe(error) });
    log(`  nginx: skipped (${describe(error)})`);
    return undefined;
  }
}

/** New keys (a fresh one per request) and replays (one completed key) through one gateway. */
function keyedVariants(via: GatewayVia, store: GatewayStore, gateway: GatewayProcess): Variant[] {
  const id = randomUUID().slice(0, 8);
  let counter = 0;
  const replayKey = `replay-${randomUUID()}`;
  return [
    { via, store, mode: 'new keys', url: gateway.url, key: () => `g-${id}-${counter++}`, pid: gateway.pid },
    { via, store, mode: 'replays', url: gateway.url, key: () => replayKey, pid: gateway.pid },
  ];
}

/**
 * Starts `idem serve` on `store` and checks it: a repeated key replays (keyed), or two requests
 * without a key both pass (memory:). `undefined`, noted in the report, when it does not start.
 */
async function startChecked(
  run: GatewayRun,
  via: GatewayVia,
  storeUrl: string,
  extra: string[],
  store?: GatewayStore,
): Promise<GatewayProcess | undefined> {
  const { report, upstream, log } = run;
  const name = store === undefined ? `${via}, no key` : `${via} on ${store}`;
  let gateway: GatewayProcess;
  try {
    gateway = await startGateway(upstream.url, storeUrl, extra);
  } catch (error) {
    report.skipped.push({ store: name, reason: describe(error).slice(0, 300) });
    log(`  ${name}: skipped (${describe(error).slice(0, 300)})`);
    return undefined;
  }
  run.started.push({ stop: () => gateway.stop().then(() => noteOutput(report, name, gateway.output())) });
  const check =
    store === undefined ? await verifyPassThrough(gateway.url, upstream) : await verifyReplay(gateway.url, upstream);
  report.verified.push({ gateway: name, ...check });
  log(`  ${name}: ${check.ok ? 'verified' : 'NOT VERIFIED'} (${check.note})`);
  return gateway;
}

/** A short unmeasured run, so the measured one starts warm. */
async function warmUp(variant: Variant, seconds: number): Promise<void> {
  await runLoad({ url: variant.url, path: PATH, body: BODY, durationS: seconds, key: variant.key });
  if (variant.mode === 'replays') await post(variant.url, variant.key()); // completed before it is measured
}

/** One measured run of one variant, with the CPU its server and the upstream spent. */
interface RoundResult {
  load: LoadResult;
  upstreamCalls: number;
  serverCpuUs: number;
  upstreamCpuUs: number;
  serverCores: number;
}

async function measure(run: GatewayRun, variant: Variant, durationS: number): Promise<RoundResult> {
  const { upstream, log } = run;
  const before = await upstream.payments();
  const serverBefore = treeCpuUs(variant.pid);
  const upstreamBefore = treeCpuUs(upstream.pid);
  const startedMs = performance.now();
  const load = await runLoad({
    url: variant.url,
    path: PATH,
    body: BODY,
    durationS,
    key: variant.key,
    connections: CONNECTIONS,
  });
  const answered = Math.max(1, load.requests);
  const upstreamCpuUs = (treeCpuUs(upstream.pid) - upstreamBefore) / answered;
  const serverSpentUs = treeCpuUs(variant.via === 'direct' ? upstream.pid : variant.pid) - serverBefore;
  const serverCores = serverSpentUs / 1000 / (performance.now() - startedMs);
  const serverCpuUs = variant.via === 'direct' ? upstreamCpuUs : serverSpentUs / answered;
  const upstreamCalls = (await upstream.payments()) - before;
  const bad = load.non2xx + load.errors > 0 ? `, ${load.non2xx} non-2xx, ${load.errors} errors` : '';
  log(
    `  ${`${variant.via} ${variant.store === '-' ? '' : `${variant.store} `}${variant.mode}`.padEnd(40)}: ${Math.round(load.requestsPerSec).toLocaleString('en-US')} req/s, p99 ${load.p99Ms.toFixed(2)} ms, server ${serverCpuUs.toFixed(0)} us/req on ${serverCores.toFixed(2)} cores, upstream calls ${upstreamCalls}${bad}`,
  );
  return { load, upstreamCalls, serverCpuUs, upstreamCpuUs, serverCores };
}

/** The variant's median run by throughput, with the median CPU figures of all its runs. */
function medianRow(variant: Variant, results: RoundResult[]): GatewayRow {
  const byRps = [...results].sort((a, b) => a.load.requestsPerSec - b.load.requestsPerSec);
  const middle = byRps[Math.floor((byRps.length - 1) / 2)] as RoundResult;
  return {
    via: variant.via,
    store: variant.store,
    mode: variant.mode,
    ...middle.load,
    upstreamCalls: middle.upstreamCalls,
    serverCpuUs: median(results.map((result) => result.serverCpuUs)),
    upstreamCpuUs: median(results.map((result) => result.upstreamCpuUs)),
    serverCores: median(results.map((result) => result.serverCores)),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
}

/** A store the gateway runs on: its `--store` URL; what the run left in it is dropped at the end. */
interface StoreTarget {
  url: string;
}

/**
 * The store URL for a gateway on `store`, noted in `report.where`: a new SQLite file, or keys
 * under a prefix of this run's own on Redis (deleted at the end). `undefined` when Redis does not
 * answer (noted in `report.skipped`).
 */
async function storeTarget(run: GatewayRun, store: GatewayStore, name: string): Promise<StoreTarget | undefined> {
  const { report } = run;
  if (store === 'sqlite') {
    const file = join(run.directory, `gateway-${name}.db`);
    report.where[`sqlite (${name})`] = `${file} (a new file; WAL)`;
    return { url: `sqlite:${file}` };
  }
  const up = await answers(servers.redis);
  if (up !== true) {
    report.skipped.push({ store: `redis (${name})`, reason: up });
    run.log(`  redis (${name}): skipped (${up})`);
    return undefined;
  }
  // A prefix of this run's own, so nothing else on the server is touched; deleted afterwards.
  const prefix = `idem_bench_gateway_${randomUUID().slice(0, 8)}:`;
  const where = `redis (${name})`;
  report.where[where] = `${servers.redis}, keys ${prefix}*`;
  run.cleanUps.push(async () => {
    const deleted = await deleteRedisKeys(prefix);
    report.where[where] += ` (${deleted} deleted afterwards)`;
  });
  return { url: `${servers.redis}${servers.redis.includes('?') ? '&' : '?'}prefix=${prefix}` };
}

/** Sets each row's throughput and p99 relative to calling the upstream directly. */
function compareToDirect(rows: GatewayRow[]): void {
  const direct = rows.find((row) => row.via === 'direct');
  if (direct === undefined) return;
  for (const row of rows) {
    row.xDirectRps = row.requestsPerSec / direct.requestsPerSec;
    row.xDirectP99 = row.p99Ms / direct.p99Ms;
  }
}

/**
 * Sets `idem serve` without a key against the minimal Node proxy, or notes that there was none.
 * Each figure is the median over the rounds of the two runs' ratio in one round: they run one
 * after the other, so the machine's drift from round to round (often 30% here) falls on both.
 */
function setTargets(report: GatewayReport, variants: Variant[], runs: Map<Variant, RoundResult[]>): void {
  const find = (via: GatewayVia) => variants.find((variant) => variant.via === via && variant.mode === 'no key');
  const proxy = runs.get(find('node proxy') as Variant);
  const idem = runs.get(find('idem serve') as Variant);
  if (proxy === undefined || idem === undefined) {
    report.notes.push(`the target (${GATEWAY_GOAL}) was not measured: no node proxy or no-key run.`);
    return;
  }
  const ratio = (of: (result: RoundResult) => number) =>
    median(idem.map((result, round) => of(result) / of(proxy[round] as RoundResult)));
  const cpu = ratio((result) => result.serverCpuUs);
  const rps = ratio((result) => result.load.requestsPerSec);
  report.targets.push(
    {
      figure: 'idem serve no key, server CPU per request x node proxy (median of rounds)',
      measured: cpu,
      target: '<= 1.00x',
      met: cpu <= 1,
    },
    {
      figure: 'idem serve no key, req/s x node proxy (median of rounds)',
      measured: rps,
      target: '>= 1.00x',
      met: rps >= 1,
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
const EXPECTED_OUTPUT =
  /^idem: (gateway listening on |health |note: memory: |warning: memory: |SIGTERM: |stopped: |workers: |worker )/;

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

/** A port nobody listens on now (for nginx, which cannot report the one it picked). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}
