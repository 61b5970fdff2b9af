import type { GatewayReport } from './gateway.js';
import type { HttpReport } from './http.js';
import type { LoadResult } from './load.js';
import type { StoreReport, StoreRow } from './stores.js';

export type Align = 'left' | 'right';

/** A plain-text table: a header row, a rule, then the rows; numbers right-aligned. */
export function table(headers: string[], rows: string[][], align: Align[] = []): string {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) =>
        (align[i] ?? 'left') === 'right' ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0),
      )
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].join('\n');
}

const int = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-');
const dec = (value: number | undefined, digits = 1) =>
  value === undefined || !Number.isFinite(value) ? '' : value.toFixed(digits);
const ratio = (value: number | undefined) =>
  value === undefined || !Number.isFinite(value) ? '' : `${value.toFixed(value >= 100 ? 0 : 2)}x`;

export function storeSection(report: StoreReport): string {
  const out: string[] = [];
  out.push('STORES: idempotent(createOrder) against the bare async createOrder, and against the raw driver');
  out.push(
    'overhead = extra time per call over the bare function (1 in flight: mean latency; 32 in flight: 1 / throughput);',
  );
  out.push('x floor = idem time per call / raw floor: two raw writes for a new key, one raw read for a replay.');
  out.push('');
  const right: Align[] = ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'left'];
  const rows = report.rows.map((row: StoreRow) => [
    row.store,
    row.case,
    String(row.concurrency),
    int(row.result.opsPerSec),
    dec(row.result.meanUs),
    dec(row.result.p99Us),
    dec(row.overheadUs),
    ratio(row.xBare),
    ratio(row.xFloor),
    row.result.failures > 0 ? `${row.result.failures} failed: ${row.result.firstError}` : row.what,
  ]);
  out.push(
    table(
      ['store', 'case', 'in flight', 'ops/s', 'mean us', 'p99 us', 'overhead us', 'x bare', 'x floor', 'what'],
      rows,
      right,
    ),
  );
  for (const [store, where] of Object.entries(report.where)) out.push(`  ${store}: ${where}`);
  for (const { store, reason } of report.skipped) out.push(`  ${store}: SKIPPED, ${reason}`);

  if (report.targets.length > 0) {
    out.push('');
    out.push('Targets (measured, not asserted)');
    out.push(
      table(
        ['store', 'figure', 'measured', 'target', 'status'],
        report.targets.map((check) => [
          check.store,
          check.what,
          check.unit === 'ops/s'
            ? `${int(check.value)}/s`
            : check.unit === 'x'
              ? ratio(check.value)
              : `${dec(check.value, 2)} us`,
          check.target,
          check.met ? 'met' : 'MISSED',
        ]),
        ['left', 'left', 'right', 'left', 'left'],
      ),
    );
  }
  if (report.breakdown.length > 0) {
    out.push('');
    out.push('Where the memory-store overhead goes (each piece timed alone, hot loop; approximate)');
    out.push(
      table(
        ['piece', 'us per call'],
        report.breakdown.map((part) => [part.part, dec(part.us, 2)]),
        ['left', 'right'],
      ),
    );
  }
  return out.join('\n');
}

export function httpSection(report: HttpReport): string {
  const out: string[] = [];
  out.push(
    `HTTP: Express 5, POST /orders with a JSON body, server in its own process; autocannon, ${report.connections} connections, ${report.durationS} s per run`,
  );
  if (report.rounds > 1) {
    out.push(
      `${report.rounds} rounds of every variant in turn; each row is the variant's median run (by req/s), so drift on this shared machine weighs on all alike.`,
    );
  }
  out.push('new keys = a fresh Idempotency-Key on every request; replays = one completed key repeated.');
  out.push(
    'x bare = against the bare handler in the same mode: per round, against the mean of the bare runs that open and close the round; the median over rounds. Latency is per 2xx response.',
  );
  out.push(
    'server CPU us per request = user plus system CPU of the server process over the run (from /proc/<pid>/stat), divided by the requests answered.',
  );
  out.push('');
  const rows = report.rows.map((row) => [
    `${row.library}${row.ours ? ' *' : ''}`,
    row.store,
    row.mode,
    ...loadCells(row),
    ratio(row.xBareRps),
    ratio(row.xBareP99),
    row.serverCpuUs.toFixed(0),
    String(row.non2xx),
    String(row.errors),
  ]);
  out.push(
    table(
      [
        'library',
        'store',
        'keys',
        'req/s',
        'mean ms',
        'p50 ms',
        'p99 ms',
        'x bare req/s',
        'x bare p99',
        'server CPU us per request',
        'non-2xx',
        'errors',
      ],
      rows,
      ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
  );
  if (report.rows.some((row) => row.ours)) {
    out.push(
      '* OUR code, not a library: @node-idempotency/core has no Express adapter here, so its Express middleware and memory/Redis storage adapters are our glue (bench/node-idempotency-glue.ts); the minimal claim-then-write middleware (bench/minimal-middleware.ts) is the obvious one written by hand, with no scopes, fingerprint, size limit or lease.',
    );
  }
  for (const check of report.verified) {
    out.push(`  ${check.variant}: ${check.ok ? 'replay verified' : 'REPLAY NOT VERIFIED'}, ${check.note}`);
  }
  for (const { variant, reason } of report.skipped) out.push(`  ${variant}: SKIPPED, ${reason}`);
  for (const note of report.notes) out.push(`  note: ${note}`);
  return out.join('\n');
}

export function gatewaySection(report: GatewayReport): string {
  const out: string[] = [];
  out.push(
    `GATEWAY: proxies in front of a node:http JSON upstream (POST /payments, 201), each in its own process; autocannon, ${report.connections} connections, ${report.rounds} interleaved round(s) of ${report.durationS} s, median run`,
  );
  out.push(
    'direct = straight at the upstream; node proxy = node:http + keep-alive agent written the obvious way (bench/minimal-proxy.ts);',
  );
  out.push('nginx = one worker, keep-alive to the upstream; idem serve no key = the proxy hop alone (no store);');
  out.push('new keys = a fresh Idempotency-Key on every request; replays = one completed key repeated.');
  out.push(
    'server us/req = CPU (user + system, from /proc) of the proxy process and its children per response (direct: the upstream); x direct = against calling the upstream directly.',
  );
  out.push(
    "cores = that CPU over the run's wall time: how many cores the proxy kept busy (--workers 2 should near 2).",
  );
  out.push('');
  const rows = report.rows.map((row) => [
    row.via,
    row.store,
    row.mode,
    ...loadCells(row),
    dec(row.serverCpuUs, 0),
    dec(row.upstreamCpuUs, 0),
    dec(row.serverCores, 2),
    ratio(row.xDirectRps),
    ratio(row.xDirectP99),
    int(row.upstreamCalls),
    String(row.non2xx),
    String(row.errors),
  ]);
  out.push(
    table(
      [
        'via',
        'store',
        'keys',
        'req/s',
        'mean ms',
        'p50 ms',
        'p99 ms',
        'server us/req',
        'upstream us/req',
        'cores',
        'x direct req/s',
        'x direct p99',
        'upstream calls',
        'non-2xx',
        'errors',
      ],
      rows,
      [
        'left',
        'left',
        'left',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
      ],
    ),
  );
  for (const [store, where] of Object.entries(report.where)) out.push(`  ${store}: ${where}`);
  for (const check of report.verified) {
    out.push(`  ${check.gateway}: ${check.ok ? 'verified' : 'NOT VERIFIED'}, ${check.note}`);
  }
  for (const { store, reason } of report.skipped) out.push(`  ${store}: SKIPPED, ${reason}`);
  for (const note of report.notes) out.push(`  note: ${note}`);
  if (report.targets.length > 0) {
    out.push('');
    out.push(`Target (measured, not asserted): ${report.goal}`);
    out.push(
      table(
        ['figure', 'measured', 'target', 'status'],
        report.targets.map((check) => [
          check.figure,
          ratio(check.measured),
          check.target,
          check.met ? 'met' : 'MISSED',
        ]),
        ['left', 'right', 'left', 'left'],
      ),
    );
  }
  return out.join('\n');
}

/** The cells every load run shows: req/s, then mean, p50 and p99 latency in ms. */
function loadCells(row: LoadResult): string[] {
  return [int(row.requestsPerSec), dec(row.meanMs, 2), dec(row.p50Ms, 2), dec(row.p99Ms, 2)];
}
