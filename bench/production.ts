/**
 * The production part (`--only production`): what the production features cost. Telemetry (an
 * `onEvent` hook, OpenTelemetry with no SDK, a recording tracer and meter) and encryption on the
 * function wrapper (`telemetry-cost.ts`) and the Express middleware under HTTP load
 * (`telemetry-http.ts`), as ratios against Idem with them off and against the bare operation, in
 * one run; and the sweeper's effect on claims under constant load (`sweeper-cost.ts`).
 */

import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { benchSweeperCost, type SweeperReport } from './sweeper-cost.js';
import { benchFunctionCost, type FunctionCostReport } from './telemetry-cost.js';
import { benchHttpCost, type HttpCostReport } from './telemetry-http.js';

export interface ProductionReport {
  functions: FunctionCostReport;
  http: HttpCostReport;
  sweeper: SweeperReport;
  /** `uptime` before and after, for how busy the machine was. */
  uptime: { start: string; end: string };
}

export interface ProductionBenchOptions {
  stores: string[];
  quick: boolean;
  log: (line: string) => void;
}

export async function benchProduction(options: ProductionBenchOptions): Promise<ProductionReport> {
  const start = uptime();
  options.log('  function wrapper...');
  const functions = await benchFunctionCost(options);
  options.log('  http...');
  const http = await benchHttpCost(options);
  options.log('  sweeper...');
  const sweeper = await benchSweeperCost(options);
  return { functions, http, sweeper, uptime: { start, end: uptime() } };
}

/** What `uptime` prints, or the load average when there is no such command. */
function uptime(): string {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    return `load average ${loadavg()
      .map((value) => value.toFixed(2))
      .join(', ')}`;
  }
}
