import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { send } from '../src/testing/http-client.js';
import { type ServerConfig, type ServerReady, VARIANTS, type Variant } from './http-variants.js';
import { DEFAULT_CONNECTIONS, type LoadResult, runLoad } from './load.js';
import { treeCpuUs } from './process-cpu.js';
import { deleteKeys, describe, type StoreName, servers } from './store-targets.js';

export type KeyMode = 'new keys' | 'replays';

/** One load run against one server. */
export interface HttpRow extends LoadResult {
  variant: Variant['id'];
  library: string;
  store: StoreName | '-';
  /** True when the glue between the library and Express is the benchmark's, not the library's. */
  ours: boolean;
  mode: KeyMode;
  /** Throughput relative to the bare handler in the same mode. */
  xBareRps?: number;
  /** p99 latency relative to the bare handler in the same mode. */
  xBareP99?: number;
  /** User plus system CPU of the server process per answered request, in microseconds (from /proc). */
  serverCpuUs: number;
  /** The round the run belongs to (1 when there is one). */
  round?: number;
  /** True for the bare run that closes its round: used for ratios only, not as the bare row. */
  closesRound?: boolean;
}

export interface HttpReport {
  connections: number;
  durationS: number;
  /**
   * Each variant ran this many times, the rounds interleaved; each row is its median run, and its
   * ratios to bare the median of its per-round ratios (bare opens and closes every round).
   */
  rounds: number;
  rows: HttpRow[];
  /** What the pre-run check found for each library: did a repeated key replay? */
  verified: { variant: Variant['id']; ok: boolean; note: string }[];
  skipped: { variant: Variant['id']; reason: string }[];
  notes: string[];
}

export interface HttpBenchOptions {
  stores: StoreName[];
  quick: boolean;
  log: (line: string) => void;
}

const CONNECTIONS = DEFAULT_CONNECTIONS;
const BODY = JSON.stringify({ amount: 500, currency: 'eur' });
const POSTGRES_TABLE = 'idem_bench_http';
const REDIS_PREFIX = 'idem_bench_http:';

/**
 * The HTTP part: autocannon against an Express 5 JSON POST handler in a child process, bare and
 * behind each library, first with a new Idempotency-Key on every request, then replaying one key.
 */
export async function benchHttp(options: HttpBenchOptions): Promise<HttpReport> {
  const { log } = options;
  const durationS = options.quick ? 1 : 3;
  const warmupS = options.quick ? 0.3 : 1;
  // Rounds of every variant in turn, so that a slow minute on this shared machine lands on
  // all of them alike rather than on whichever ran then; each row is the variant's median run.
  const rounds = options.quick ? 1 : 3;
  const report: HttpReport = {
    connections: CONNECTIONS,
    durationS,
    rounds,
    rows: [],
    verified: [],
    skipped: [],
    notes: [],
  };
  const directory = mkdtempSync(join(tmpdir(), 'idem-bench-http-'));
  const config: Omit<ServerConfig, 'variant'> = {
    sqlitePath: join(directory, 'idem.db'),
    postgresUrl: servers.postgres,
    postgresTable: POSTGRES_TABLE,
    redisUrl: servers.redis,
    redisPrefix: REDIS_PREFIX,
  };
  const reachable: Partial<Record<StoreName, string | true>> = { memory: true, sqlite: true };
  for (const name of ['postgres', 'redis'] as const) reachable[name] = await answers(servers[name]);
  await cleanUp(reachable);

  const variants = variantsToRun(options.stores, reachable, report, log);
  const runs: HttpRow[] = [];
  try {
    runs.push(...(await runRounds(variants, config, { rounds, durationS, warmupS }, report, log)));
  } finally {
    await cleanUp(reachable).catch((error: unknown) => log(`  cleanup failed: ${describe(error)}`));
    rmSync(directory, { recursive: true, force: true });
  }

  report.rows = medianRuns(runs.filter((run) => !run.closesRound));
  compareToBare(report.rows, runs);
  if (report.rows.some((row) => row.variant === 'express-idempotency')) {
    report.notes.push(
      "express-idempotency: its default in-memory adapter keeps records in an array and scans it on every request, so it slows as records pile up; its replays ran on the server that had just stored the new-keys run, as every library's did.",
    );
  }
  return report;
}

/**
 * Every variant in turn, `rounds` times. The bare handler opens and closes every round: each
 * variant is compared with the bare runs of its own round, so a machine that drifts between rounds
 * shifts both sides of a ratio.
 */
async function runRounds(
  variants: Variant[],
  config: Omit<ServerConfig, 'variant'>,
  timing: { rounds: number; durationS: number; warmupS: number },
  report: HttpReport,
  log: (line: string) => void,
): Promise<HttpRow[]> {
  const runs: HttpRow[] = [];
  const order = variants[0]?.id === 'bare' && variants.length > 1 ? [...variants, variants[0]] : variants;
  for (let round = 1; round <= timing.rounds; round++) {
    if (timing.rounds > 1) log(`  round ${round} of ${timing.rounds}`);
    for (const [i, variant] of order.entries()) {
      const run = { ...config, variant: variant.id };
      const first = round === 1 ? report : undefined;
      const rows = await runVariant(variant, run, timing.durationS, timing.warmupS, first, log);
      const closesRound = i > 0 && variant.id === 'bare';
      runs.push(...rows.map((row) => ({ ...row, round, closesRound })));
    }
  }
  return runs;
}

/**
 * The variants `stores` asks for whose store answers; the others are noted in `report.skipped`.
 * The peer libraries run on memory whatever `stores` says; only their Redis run follows it.
 */
function variantsToRun(
  stores: StoreName[],
  reachable: Partial<Record<StoreName, string | true>>,
  report: HttpReport,
  log: (line: string) => void,
): Variant[] {
  const variants: Variant[] = [];
  for (const variant of VARIANTS) {
    const store: StoreName | undefined = variant.store;
    const wanted =
      store === undefined ||
      stores.includes(store) ||
      variant.id === 'express-idempotency' ||
      variant.id === 'node-idempotency-memory' ||
      variant.id === 'minimal-memory';
    if (!wanted) continue;
    const up = store === undefined ? true : reachable[store];
    if (up !== true) {
      report.skipped.push({ variant: variant.id, reason: up ?? 'not checked' });
      log(`  ${variant.id}: skipped (${up})`);
      continue;
    }
    variants.push(variant);
  }
  return variants;
}

/**
 * Sets each row's throughput and p99 relative to the bare handler: in each round, the variant's
 * run against the mean of that round's bare runs (the one before the variants and the one after),
 * and the row gets the median of those per-round ratios.
 */
function compareToBare(rows: HttpRow[], runs: HttpRow[]): void {
  const bareOf = (round: number | undefined, mode: KeyMode) => {
    const bare = runs.filter((run) => run.variant === 'bare' && run.mode === mode && run.round === round);
    const mean = (pick: (run: HttpRow) => number) => bare.reduce((sum, run) => sum + pick(run), 0) / bare.length;
    return bare.length === 0 ? undefined : { rps: mean((run) => run.requestsPerSec), p99: mean((run) => run.p99Ms) };
  };
  for (const row of rows) {
    if (row.variant === 'bare') {
      row.xBareRps = 1;
      row.xBareP99 = 1;
      continue;
    }
    const ratios = runs
      .filter((run) => run.variant === row.variant && run.mode === row.mode)
      .flatMap((run) => {
        const bare = bareOf(run.round, run.mode);
        return bare === undefined ? [] : [{ rps: run.requestsPerSec / bare.rps, p99: run.p99Ms / bare.p99 }];
      });
    if (ratios.length > 0) {
      row.xBareRps = median(ratios.map((ratio) => ratio.rps));
      row.xBareP99 = median(ratios.map((ratio) => ratio.p99));
    }
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** For each variant and mode, in the order first run, the run with the median throughput. */
function medianRuns(runs: HttpRow[]): HttpRow[] {
  const groups = new Map<string, HttpRow[]>();
  for (const run of runs) {
    const id = `${run.variant} ${run.mode}`;
    groups.set(id, [...(groups.get(id) ?? []), run]);
  }
  return [...groups.values()].map((group) => {
    const sorted = [...group].sort((a, b) => a.requestsPerSec - b.requestsPerSec);
    return sorted[Math.floor((sorted.length - 1) / 2)] as HttpRow;
  });
}

/**
 * Runs one variant in both modes on a fresh server and returns its rows; with `report` (the first
 * round), first checks that a repeated key really replays and notes what the server printed.
 */
async function runVariant(
  variant: Variant,
  config: ServerConfig,
  durationS: number,
  warmupS: number,
  report: HttpReport | undefined,
  log: (line: string) => void,
): Promise<HttpRow[]> {
  const rows: HttpRow[] = [];
  const server = await startServer(config);
  try {
    if (variant.id !== 'bare' && report !== undefined) {
      const check = await verifyReplay(server.url, variant.id.startsWith('idem-'));
      report.verified.push({ variant: variant.id, ...check });
      log(`  ${variant.id}: ${check.ok ? 'replay verified' : 'REPLAY NOT VERIFIED'} (${check.note})`);
    }
    await load(server.url, 'new keys', warmupS);
    for (const mode of ['new keys', 'replays'] as const) {
      if (mode === 'replays') {
        // The one key every request repeats is completed first, so every measured request replays.
        const key = `replay-${randomUUID()}`;
        await post(server.url, key);
        rows.push(row(variant, mode, await measuredLoad(server, mode, durationS, key)));
      } else {
        rows.push(row(variant, mode, await measuredLoad(server, mode, durationS)));
      }
      const last = rows.at(-1) as HttpRow;
      const bad = last.non2xx + last.errors > 0 ? `, ${last.non2xx} non-2xx, ${last.errors} errors` : '';
      log(
        `  ${variant.id.padEnd(24)} ${mode.padEnd(8)}: ${Math.round(last.requestsPerSec).toLocaleString('en-US')} req/s, p99 ${last.p99Ms.toFixed(2)} ms, server ${last.serverCpuUs.toFixed(0)} us/req${bad}`,
      );
    }
  } finally {
    await server.stop();
  }
  if (report !== undefined && server.output().trim() !== '') {
    const lines = server.output().trim().split('\n');
    report.notes.push(
      `${variant.id}: the server printed ${lines.length} line(s), first: ${JSON.stringify(lines[0]?.slice(0, 160))}`,
    );
  }
  return rows;
}

/** One load run with the server's CPU per answered request, read from /proc before and after. */
async function measuredLoad(
  server: RunningServer,
  mode: KeyMode,
  durationS: number,
  replayKey?: string,
): Promise<LoadResult & { serverCpuUs: number }> {
  const before = treeCpuUs(server.pid);
  const result = await load(server.url, mode, durationS, replayKey);
  const serverCpuUs = (treeCpuUs(server.pid) - before) / Math.max(1, result.requests);
  return { ...result, serverCpuUs };
}

function row(variant: Variant, mode: KeyMode, result: LoadResult & { serverCpuUs: number }): HttpRow {
  return {
    variant: variant.id,
    library: variant.library,
    store: variant.store ?? '-',
    ours: variant.ours,
    mode,
    ...result,
  };
}

/** One autocannon run; `replayKey` repeats one key, otherwise every request carries a new one. */
function load(url: string, mode: KeyMode, durationS: number, replayKey?: string): Promise<LoadResult> {
  const run = randomUUID().slice(0, 8);
  let counter = 0;
  return runLoad({
    url,
    path: '/orders',
    body: BODY,
    durationS,
    key: () => (mode === 'replays' && replayKey !== undefined ? replayKey : `n-${run}-${counter++}`),
  });
}

/** Sends one key twice: the second answer must carry the first one's handler run (and idem's replay header). */
async function verifyReplay(url: string, idem: boolean): Promise<{ ok: boolean; note: string }> {
  const key = `verify-${randomUUID()}`;
  try {
    const first = await post(url, key);
    const second = await post(url, key);
    const runOf = (json: unknown) => (json as { run?: unknown } | undefined)?.run;
    const problems: string[] = [];
    if (first.status !== 201) problems.push(`first answer ${first.status}`);
    if (second.status !== 201) problems.push(`second answer ${second.status}`);
    if (runOf(second.json) !== runOf(first.json)) problems.push('the handler ran again');
    if (idem && second.headers['idempotent-replayed'] !== 'true') problems.push('no Idempotent-Replayed header');
    if (problems.length > 0) return { ok: false, note: `${problems.join('; ')}: ${second.text.slice(0, 120)}` };
    return { ok: true, note: `second request got handler run ${String(runOf(first.json))} back with ${second.status}` };
  } catch (error) {
    return { ok: false, note: describe(error) };
  }
}

function post(url: string, key: string) {
  return send(`${url}/orders`, {
    headers: { 'content-type': 'application/json', authorization: 'Bearer bench-client', 'idempotency-key': key },
    body: BODY,
  });
}

export interface RunningServer {
  url: string;
  /** The server process, for its CPU time in /proc. */
  pid: number;
  /** What the server wrote to stdout and stderr (the libraries' own logging). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts a server script (bench/http-server.ts unless `script` names another) in a child process,
 * with `config` as JSON in argv, and waits for the port it reports over IPC.
 */
export async function startServer(
  config: { variant: string },
  script = new URL('./http-server.ts', import.meta.url),
): Promise<RunningServer> {
  const entry = script.pathname;
  const child: ChildProcess = fork(entry, [JSON.stringify(config)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    if (output.length < 64_000) output += chunk.toString('utf8');
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${config.variant} server did not start in 20 s: ${output}`)),
      20_000,
    );
    child.once('message', (message) => {
      clearTimeout(timer);
      resolve((message as ServerReady).port);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${config.variant} server exited with ${code}: ${output}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid as number,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** True when something listens at the URL's host and port; otherwise why not. */
export function answers(url: string): Promise<string | true> {
  const { hostname, port, protocol } = new URL(url);
  const fallback = protocol.startsWith('redis') ? 6379 : 5432;
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || fallback) });
    socket.setTimeout(1500);
    socket.once('connect', () => {
      socket.end();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(`${url} did not answer within 1.5 s`);
    });
    socket.once('error', (error) => resolve(`${url} is unreachable: ${error.message}`));
  });
}

/** Drops what the servers kept: the PostgreSQL table and the Redis keys of the HTTP runs. */
async function cleanUp(reachable: Partial<Record<StoreName, string | true>>): Promise<void> {
  if (reachable.postgres === true) {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: servers.postgres, connectionTimeoutMillis: 2000 });
    await client.connect();
    try {
      await client.query(`DROP TABLE IF EXISTS "${POSTGRES_TABLE}_journal", "${POSTGRES_TABLE}"`);
    } finally {
      await client.end();
    }
  }
  if (reachable.redis === true) {
    const { Redis } = await import('ioredis');
    const redis = new Redis(servers.redis, { maxRetriesPerRequest: 1, connectTimeout: 2000 });
    try {
      await deleteKeys(redis, REDIS_PREFIX);
    } finally {
      redis.disconnect();
    }
  }
}
