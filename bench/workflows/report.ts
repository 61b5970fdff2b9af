import { type Align, table } from '../report.js';
import type { WorkflowReport } from './workflows.js';

const int = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-');
const ms = (us: number) => (Number.isFinite(us) ? (us / 1000).toFixed(2) : '');
const ratio = (value: number | undefined) =>
  value === undefined || !Number.isFinite(value) ? '' : `${value.toFixed(value >= 100 ? 0 : 2)}x`;

export function workflowSection(report: WorkflowReport): string {
  const out: string[] = [];
  out.push(
    `WORKFLOWS: a workflow of ${report.steps} steps, bare, as the floor, on DBOS Transact and on Idem; ${report.durationMs} ms per line and variant, the variants in turns`,
  );
  out.push(
    'bare = the steps as plain calls; floor = each step, then one journal INSERT (run id, seq, value, time) on its own pool, autocommit;',
  );
  out.push(
    'idem = ctx.step, then a journal append per step; idem tx (writes) = ctx.transaction: INSERT + step row in one business transaction, then the append;',
  );
  out.push(
    'one operation = one whole workflow. time per workflow = mean latency (1 in flight) or 1 / throughput (32);',
  );
  out.push(
    'x bare, x floor = time per workflow over theirs; x faster than DBOS = DBOS time per workflow over this one.',
  );
  out.push('');
  const right: Align[] = [
    'left',
    'left',
    'right',
    'left',
    'right',
    'right',
    'right',
    'right',
    'right',
    'right',
    'left',
  ];
  const rows = report.rows.map((row) => [
    row.database,
    row.steps,
    String(row.concurrency),
    row.variant,
    int(row.result.opsPerSec),
    ms(row.result.meanUs),
    ms(row.result.p99Us),
    ratio(row.xBare),
    ratio(row.xFloor),
    ratio(row.xFasterThanDbos),
    row.result.failures > 0 ? `${row.result.failures} failed: ${row.result.firstError}` : row.what,
  ]);
  out.push(
    table(
      [
        'database',
        'workload',
        'in flight',
        'variant',
        'wf/s',
        'mean ms',
        'p99 ms',
        'x bare',
        'x floor',
        'x faster than DBOS',
        'what',
      ],
      rows,
      right,
    ),
  );
  for (const [name, where] of Object.entries(report.where)) out.push(`  ${name}: ${where}`);
  for (const check of report.checks) {
    out.push(`  ${check.database} ${check.variant}: ${check.ok ? 'verified' : 'NOT VERIFIED'}, ${check.note}`);
  }
  for (const { database, variant, reason } of report.skipped) {
    out.push(`  ${database} ${variant}: SKIPPED, ${reason}`);
  }

  if (report.targets.length > 0) {
    out.push('');
    out.push('Targets (measured, not asserted)');
    out.push(
      table(
        ['database', 'workload', 'in flight', 'variant', 'figure', 'measured', 'target', 'status'],
        report.targets.map((check) => [
          check.database,
          check.workload,
          String(check.concurrency),
          check.variant,
          check.figure,
          ratio(check.value),
          check.target,
          check.status,
        ]),
        ['left', 'left', 'right', 'left', 'left', 'right', 'left', 'left'],
      ),
    );
  }

  // What the two targets allow together: Idem at 1.5x the floor is the floor's lead over DBOS / 1.5.
  const floors = report.rows.filter((row) => row.variant === 'floor' && row.xFasterThanDbos !== undefined);
  if (floors.length > 0) {
    out.push('');
    out.push('The floor against DBOS: how far ahead one journal write per step can be (the ceiling for Idem vs DBOS)');
    out.push(
      table(
        ['database', 'workload', 'in flight', 'floor x faster than DBOS', 'Idem at 1.5x floor would be'],
        floors.map((row) => [
          row.database,
          row.workload,
          String(row.concurrency),
          ratio(row.xFasterThanDbos),
          ratio((row.xFasterThanDbos ?? Number.NaN) / 1.5),
        ]),
        ['left', 'left', 'right', 'right', 'right'],
      ),
    );
  }
  return out.join('\n');
}
