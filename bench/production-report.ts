/** The production part's tables (see production.ts). */

import type { ProductionReport } from './production.js';
import { type Align, table } from './report.js';
import type { SweeperReport } from './sweeper-cost.js';
import type { FunctionCostReport } from './telemetry-cost.js';
import type { HttpCostReport } from './telemetry-http.js';
import { labelOf } from './telemetry-variants.js';

const int = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-');
const dec = (value: number | undefined, digits = 2) =>
  value === undefined || !Number.isFinite(value) ? '' : value.toFixed(digits);
const ratio = (value: number | undefined) =>
  value === undefined || !Number.isFinite(value) ? '' : `${value.toFixed(2)}x`;
const signed = (value: number) => (Number.isFinite(value) ? `${value >= 0 ? '+' : ''}${value.toFixed(2)}` : '');

export function productionSection(report: ProductionReport): string {
  return [
    'PRODUCTION FEATURES: telemetry and encryption against Idem with them off and the bare operation; the sweeper under load',
    `uptime at start: ${report.uptime.start}`,
    `uptime at end:   ${report.uptime.end}`,
    '',
    functionTable(report.functions),
    '',
    httpTable(report.http),
    '',
    sweeperTable(report.sweeper),
  ].join('\n');
}

function functionTable(report: FunctionCostReport): string {
  const out: string[] = [];
  out.push(
    `Function wrapper: idempotent(createOrder), 1 call in flight; ${report.rounds} interleaved rounds of ${report.roundMs} ms per variant, each row the median round.`,
  );
  out.push(
    'p50 = median call (median over the rounds), the figure the ratios use; mean = mean call (median over the rounds), which a busy machine inflates.',
  );
  out.push('x off = against Idem with every feature off (same store, same keys); x bare = against createOrder itself.');
  out.push('');
  const rows = report.rows.map((row) => [
    row.store,
    row.mode,
    row.variant === 'pre-telemetry' ? 'Idem before telemetry' : labelOf(row.variant),
    dec(row.p50Us),
    dec(row.meanUs),
    dec(row.p99Us, 1),
    row.plusOffUs === undefined ? '' : signed(row.plusOffUs),
    ratio(row.xOff),
    ratio(row.xBare),
    row.failures > 0 ? `${row.failures} failed: ${row.firstError}` : '',
  ]);
  const align: Align[] = ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'left'];
  const headers = [
    'store',
    'keys',
    'variant',
    'p50 us',
    'mean us',
    'p99 us',
    'p50 vs off',
    'x off',
    'x bare',
    'failures',
  ];
  out.push(table(headers, rows, align));
  for (const { store, reason } of report.skipped) out.push(`  ${store}: SKIPPED, ${reason}`);
  for (const note of report.notes) out.push(`  note: ${note}`);
  return out.join('\n');
}

function httpTable(report: HttpCostReport): string {
  const out: string[] = [];
  out.push(
    `HTTP: Express 5 POST /<route>/orders, every variant a route of one server process; autocannon, ${report.connections} connections, ${report.durationS} s per run, ${report.rounds} interleaved round(s), each row the median run by req/s.`,
  );
  out.push(
    'x off = against the middleware with every feature off on the same store; x bare = the handler without Idem.',
  );
  out.push('');
  const rows = report.rows.map((row) => [
    row.store,
    row.mode,
    labelOf(row.variant),
    int(row.requestsPerSec),
    dec(row.p50Ms),
    dec(row.p99Ms),
    ratio(row.xOffRps),
    ratio(row.xOffP99),
    ratio(row.xBareRps),
    String(row.non2xx + row.errors),
  ]);
  const align: Align[] = ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'];
  out.push(
    table(
      [
        'store',
        'keys',
        'variant',
        'req/s',
        'p50 ms',
        'p99 ms',
        'x off req/s',
        'x off p99',
        'x bare req/s',
        'non-2xx+err',
      ],
      rows,
      align,
    ),
  );
  const failed = report.verified.filter((check) => !check.ok);
  out.push(
    failed.length === 0
      ? `  every route checked first: a repeated key replayed (Idempotent-Replayed: true, the handler not run again)`
      : failed.map((check) => `  ${check.route}: REPLAY NOT VERIFIED, ${check.note}`).join('\n'),
  );
  for (const note of report.notes) out.push(`  note: ${note}`);
  return out.join('\n');
}

function sweeperTable(report: SweeperReport): string {
  const out: string[] = [];
  out.push(
    `Sweeper: ${report.concurrency} callers, each idempotent() with a new key as soon as its last call returned, ${report.durationS} s per run; records expire ${report.retentionMs} ms after they complete.`,
  );
  out.push(
    `With: startSweeper(store, { everyMs: ${report.everyMs}, batch: ${report.batch} }) beside the load. ${report.rounds} round(s), off and on alternating, the table emptied before each run; each row the median run.`,
  );
  out.push(
    "claim = the engine's claim (its onEvent durationMs); call = claim, function and completion; rows at end = the table's rows when each run ended.",
  );
  out.push('');
  const rows = report.rows.map((row) => [
    row.store,
    row.sweeper ? 'on' : 'off',
    int(row.callsPerSec),
    dec(row.claimP50Ms),
    dec(row.claimP99Ms),
    dec(row.callP99Ms),
    int(row.sweptPerSec),
    row.rowsAtEnd.map(int).join(', '),
    row.calls.map(int).join(', '),
    row.failures > 0 ? `${row.failures} failed: ${row.firstError}` : '',
  ]);
  const align: Align[] = ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'left', 'left', 'left'];
  out.push(
    table(
      [
        'store',
        'sweeper',
        'calls/s',
        'claim p50 ms',
        'claim p99 ms',
        'call p99 ms',
        'swept/s',
        'rows at end',
        'calls per run',
        'failures',
      ],
      rows,
      align,
    ),
  );
  for (const { store, reason } of report.skipped) out.push(`  ${store}: SKIPPED, ${reason}`);
  return out.join('\n');
}
