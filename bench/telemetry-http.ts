/**
 * The production part, HTTP: the Express middleware with each production feature on (telemetry,
 * encryption) against it with them off and against the bare handler, under autocannon load, new
 * keys and replays, on the memory store and SQLite. One server process holds every variant on a
 * route of its own (`production-server.ts`); the rounds take the variants in turn, each round
 * starting one further along, and each row is the variant's median run.
 */

import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { send } from '../src/testing/http-client.js';
import { type RunningServer, startServer } from './http.js';
import { DEFAULT_CONNECTIONS, type LoadResult, runLoad } from './load.js';
import { describe } from './store-targets.js';
import {
  PRODUCTION_HTTP_STORES,
  type ProductionHttpStore,
  type ProductionServerConfig,
  routeOf,
  TELEMETRY_VARIANTS,
  type TelemetryVariantId,
} from './telemetry-variants.js';

export type HttpCostMode = 'new keys' | 'replays';

export interface HttpCostRow extends LoadResult {
  variant: TelemetryVariantId;
  store: ProductionHttpStore | '-';
  mode: HttpCostMode;
  /** Each round's req/s, in the order run. */
  roundsRps: number[];
  /** req/s over the `off` row's (same store and mode). */
  xOffRps?: number;
  /** p99 over the `off` row's. */
  xOffP99?: number;
  /** req/s over the bare handler's (same mode). */
  xBareRps?: number;
}

export interface HttpCostReport {
  connections: number;
  durationS: number;
  rounds: number;
  rows: HttpCostRow[];
  /** The pre-run check of each route: does a repeated key replay? */
  verified: { route: string; ok: boolean; note: string }[];
  notes: string[];
}

export interface HttpCostOptions {
  stores: string[];
  quick: boolean;
  log: (line: string) => void;
}

const BODY = JSON.stringify({ amount: 500, currency: 'eur' });

interface Route {
  variant: TelemetryVariantId;
  store: ProductionHttpStore | undefined;
  path: string;
}

/** Runs every route in both modes, `rounds` times; a row is the route's median run by req/s. */
export async function benchHttpCost(options: HttpCostOptions): Promise<HttpCostReport> {
  const { log } = options;
  const durationS = options.quick ? 1 : 2;
  const rounds = options.quick ? 1 : 3;
  // --quick keeps to the memory store, to stay within a smoke test's minute.
  const stores = PRODUCTION_HTTP_STORES.filter(
    (store) => options.stores.includes(store) && !(options.quick && store !== 'memory'),
  );
  const report: HttpCostReport = {
    connections: DEFAULT_CONNECTIONS,
    durationS,
    rounds,
    rows: [],
    verified: [],
    notes: [],
  };
  const routes = routesOf(stores);
  const directory = mkdtempSync(join(tmpdir(), 'idem-bench-prod-http-'));
  const config: ProductionServerConfig = { variant: 'production', stores, directory };
  const server = await startServer(config, new URL('./production-server.ts', import.meta.url));
  const runs: HttpCostRow[] = [];
  try {
    for (const route of routes) {
      const check = await verifyReplay(server.url, route);
      report.verified.push({ route: route.path, ...check });
      if (!check.ok) log(`  ${route.path}: REPLAY NOT VERIFIED (${check.note})`);
      if (!options.quick) await load(server, route, 'new keys', 0.5);
    }
    for (let round = 0; round < rounds; round++) {
      if (rounds > 1) log(`  http round ${round + 1} of ${rounds}`);
      // Each round starts one route further along, so no route always runs first or last.
      const order = routes.map((_, index) => routes[(index + round) % routes.length] as Route);
      for (const route of order) runs.push(...(await runRoute(server, route, durationS, log)));
    }
  } finally {
    await server.stop();
    rmSync(directory, { recursive: true, force: true });
  }
  if (server.output().trim() !== '') {
    report.notes.push(`the server printed: ${JSON.stringify(server.output().trim().slice(0, 200))}`);
  }
  report.rows = medianRows(runs, routes);
  compare(report.rows);
  return report;
}

function routesOf(stores: ProductionHttpStore[]): Route[] {
  const routes: Route[] = [{ variant: 'bare', store: undefined, path: routeOf('bare', undefined) }];
  for (const store of stores) {
    for (const { id } of TELEMETRY_VARIANTS) {
      if (id !== 'bare') routes.push({ variant: id, store, path: routeOf(id, store) });
    }
  }
  return routes;
}

/** One route, new keys then one completed key repeated. */
async function runRoute(
  server: RunningServer,
  route: Route,
  durationS: number,
  log: (line: string) => void,
): Promise<HttpCostRow[]> {
  const rows: HttpCostRow[] = [];
  for (const mode of ['new keys', 'replays'] as const) {
    const result = await load(server, route, mode, durationS);
    rows.push({ variant: route.variant, store: route.store ?? '-', mode, roundsRps: [], ...result });
    const bad = result.non2xx + result.errors > 0 ? `, ${result.non2xx} non-2xx, ${result.errors} errors` : '';
    log(
      `  ${route.path.padEnd(30)} ${mode.padEnd(8)}: ${Math.round(result.requestsPerSec).toLocaleString('en-US')} req/s, p99 ${result.p99Ms.toFixed(2)} ms${bad}`,
    );
  }
  return rows;
}

/** One autocannon run on `route`; replays first complete the one key they repeat. */
async function load(server: RunningServer, route: Route, mode: HttpCostMode, durationS: number): Promise<LoadResult> {
  const run = randomUUID().slice(0, 8);
  let counter = 0;
  const replayKey = `replay-${run}`;
  if (mode === 'replays') await post(server.url, route.path, replayKey);
  return runLoad({
    url: server.url,
    path: route.path,
    body: BODY,
    durationS,
    key: () => (mode === 'replays' ? replayKey : `n-${run}-${counter++}`),
  });
}

/** For each route and mode, the run with the median req/s, with every round's req/s. */
function medianRows(runs: HttpCostRow[], routes: Route[]): HttpCostRow[] {
  const rows: HttpCostRow[] = [];
  for (const route of routes) {
    for (const mode of ['new keys', 'replays'] as const) {
      const group = runs.filter(
        (run) => run.variant === route.variant && run.store === (route.store ?? '-') && run.mode === mode,
      );
      if (group.length === 0) continue;
      const sorted = [...group].sort((a, b) => a.requestsPerSec - b.requestsPerSec);
      const middle = sorted[Math.floor((sorted.length - 1) / 2)] as HttpCostRow;
      rows.push({ ...middle, roundsRps: group.map((run) => run.requestsPerSec) });
    }
  }
  return rows;
}

function compare(rows: HttpCostRow[]): void {
  for (const row of rows) {
    const off = rows.find((other) => other.variant === 'off' && other.store === row.store && other.mode === row.mode);
    const bare = rows.find((other) => other.variant === 'bare' && other.mode === row.mode);
    if (off !== undefined && row.store !== '-') {
      row.xOffRps = row.requestsPerSec / off.requestsPerSec;
      row.xOffP99 = row.p99Ms / off.p99Ms;
    }
    if (bare !== undefined) row.xBareRps = row.requestsPerSec / bare.requestsPerSec;
  }
}

/** A key sent twice must come back with the first run and, behind Idem, `Idempotent-Replayed: true`. */
async function verifyReplay(url: string, route: Route): Promise<{ ok: boolean; note: string }> {
  const key = `verify-${randomUUID()}`;
  try {
    const first = await post(url, route.path, key);
    const second = await post(url, route.path, key);
    const runOf = (json: unknown) => (json as { run?: unknown } | undefined)?.run;
    const problems: string[] = [];
    if (first.status !== 201 || second.status !== 201) problems.push(`answers ${first.status}, ${second.status}`);
    const idem = route.variant !== 'bare';
    if (idem && runOf(second.json) !== runOf(first.json)) problems.push('the handler ran again');
    if (idem && second.headers['idempotent-replayed'] !== 'true') problems.push('no Idempotent-Replayed header');
    if (problems.length > 0) return { ok: false, note: `${problems.join('; ')}: ${second.text.slice(0, 120)}` };
    return { ok: true, note: idem ? 'replayed' : 'bare handler answered' };
  } catch (error) {
    return { ok: false, note: describe(error) };
  }
}

function post(url: string, path: string, key: string) {
  return send(`${url}${path}`, {
    headers: { 'content-type': 'application/json', authorization: 'Bearer bench-client', 'idempotency-key': key },
    body: BODY,
  });
}
