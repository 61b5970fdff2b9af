import { randomUUID } from 'node:crypto';
import { type Measurement, measureTogether } from '../measure.js';
import { describe, Unreachable } from '../store-targets.js';
import { spreadKey } from '../stores.js';
import { openWorkflowDatabase, type WorkflowDatabase, type WorkflowDatabaseName } from './databases.js';
import { type DbosRuntime, openDbos } from './dbos-variant.js';
import { type IdemWorkflows, idemWorkflowVariant } from './idem-variant.js';
import {
  bareVariant,
  floorVariant,
  IDEM_VARIANTS,
  STEPS,
  type VariantName,
  type WorkflowVariant,
  type Workload,
  type WorkloadName,
  workloadsOn,
} from './variants.js';

/** One measured line: one variant of one workload on one database, at one concurrency. */
export interface WorkflowRow {
  database: WorkflowDatabaseName;
  workload: WorkloadName;
  /** What the workload's steps do, in words. */
  steps: string;
  /** Workflows in flight at once. */
  concurrency: number;
  variant: VariantName;
  /** What one workflow costs in this variant, in words. */
  what: string;
  /** One operation is one whole workflow. */
  result: Measurement;
  /** Time per workflow over the bare code's. */
  xBare: number;
  /** Time per workflow over the floor's. */
  xFloor: number;
  /** DBOS's time per workflow over this variant's: how many times faster than DBOS (floor and Idem rows). */
  xFasterThanDbos?: number;
}

/** A target next to the figure it judges; measured, never asserted. */
export interface WorkflowTargetCheck {
  database: WorkflowDatabaseName;
  workload: WorkloadName;
  concurrency: number;
  /** The Idem variant judged: `idem` (ctx.step) or `idem tx` (ctx.transaction). */
  variant: VariantName;
  figure: string;
  /** NaN when Idem did not run. */
  value: number;
  target: string;
  /** `not verified` when Idem ran but failed the check (a second run ran steps again): its figure does not count. */
  status: 'met' | 'MISSED' | 'not measured' | 'not verified';
}

export interface WorkflowReport {
  steps: number;
  /** Each variant's timed window per line, in ms. */
  durationMs: number;
  rows: WorkflowRow[];
  targets: WorkflowTargetCheck[];
  /** Per durable variant and database: does a second run of a completed workflow id run no step again? */
  checks: { database: WorkflowDatabaseName; variant: VariantName; ok: boolean; note: string }[];
  skipped: { database: WorkflowDatabaseName; variant: VariantName | 'all'; reason: string }[];
  where: Partial<Record<WorkflowDatabaseName | 'dbos', string>>;
}

export interface WorkflowBenchOptions {
  databases: WorkflowDatabaseName[];
  quick: boolean;
  log: (line: string) => void;
}

const IN_FLIGHT = 32;
/** Targets the issue sets: Idem within 1.5x of the floor, and at least 4x DBOS's throughput. */
const FLOOR_TARGET = 1.5;
const DBOS_TARGET = 4;

/**
 * The workflow part: a workflow of 10 steps (empty, or one INSERT each) run bare, as the floor of
 * one journal write per step, on DBOS Transact and on Idem, on SQLite and PostgreSQL, one at a time
 * and 32 in flight. The variants of a line take turns in slices of one window.
 */
export async function benchWorkflows(options: WorkflowBenchOptions): Promise<WorkflowReport> {
  const { log } = options;
  const durationMs = options.quick ? 400 : 2000;
  const report: WorkflowReport = {
    steps: STEPS,
    durationMs,
    rows: [],
    targets: [],
    checks: [],
    skipped: [],
    where: {},
  };
  for (const name of options.databases) {
    let database: WorkflowDatabase;
    try {
      database = await openWorkflowDatabase(name);
    } catch (error) {
      const reason = error instanceof Unreachable ? error.message : `could not open: ${describe(error)}`;
      report.skipped.push({ database: name, variant: 'all', reason });
      log(`  ${name}: skipped (${reason})`);
      continue;
    }
    report.where[name] = database.where;
    log(`  ${name}: ${database.where}`);
    try {
      await benchDatabase(database, durationMs, report, log);
    } finally {
      await database.close().catch((error: unknown) => log(`  ${name}: cleanup failed: ${describe(error)}`));
    }
  }
  report.targets = judge(report.rows, report.checks);
  return report;
}

async function benchDatabase(
  database: WorkflowDatabase,
  durationMs: number,
  report: WorkflowReport,
  log: (line: string) => void,
): Promise<void> {
  const workloads = workloadsOn(database);
  const { dbos, idem } = await openRuntimes(database, workloads, report, log);
  try {
    await check(database, workloads, dbos, idem, report);
    for (const workload of workloads) {
      for (const concurrency of [1, IN_FLIGHT]) {
        const variants = [bareVariant(workload), floorVariant(workload, database)];
        if (dbos !== undefined) variants.push(dbos.variant(workload.name));
        if (idem !== undefined) variants.push(...idem.variants(workload.name));
        for (const row of await measureLine(database.name, workload, concurrency, variants, durationMs)) {
          report.rows.push(row);
          log(progress(row));
        }
      }
    }
  } finally {
    await idem
      ?.close()
      .catch((error: unknown) => log(`  ${database.name}: closing the Idem store failed: ${describe(error)}`));
    await dbos?.close();
  }
}

/** DBOS (PostgreSQL only) and Idem on one database; each is undefined, and its skip recorded, when it cannot run. */
async function openRuntimes(
  database: WorkflowDatabase,
  workloads: Workload[],
  report: WorkflowReport,
  log: (line: string) => void,
): Promise<{ dbos: DbosRuntime | undefined; idem: IdemWorkflows | undefined }> {
  const skip = (variant: VariantName, reason: string) => {
    report.skipped.push({ database: database.name, variant, reason });
    log(`  ${database.name}: ${variant} skipped: ${reason}`);
  };
  let dbos: DbosRuntime | undefined;
  if (database.name === 'sqlite') {
    skip('dbos', 'n/a: DBOS Transact for TypeScript keeps its system database on PostgreSQL only');
  } else {
    try {
      dbos = await openDbos(workloads);
      report.where.dbos = `@dbos-inc/dbos-sdk ${dbos.version}, ${dbos.where}`;
    } catch (error) {
      skip('dbos', describe(error));
    }
  }
  const idem = await idemWorkflowVariant({ store: database.idemStore(), workloads });
  if (!('skipped' in idem)) return { dbos, idem };
  skip('idem', idem.skipped);
  return { dbos, idem: undefined };
}

function progress(row: WorkflowRow): string {
  const { opsPerSec, meanUs, failures, firstError } = row.result;
  const failed = failures > 0 ? `, ${failures} FAILED (${firstError})` : '';
  const line = `${row.workload.padEnd(6)} x${String(row.concurrency).padEnd(2)} ${row.variant.padEnd(7)}`;
  return `    ${line}: ${fmt(opsPerSec)} wf/s, mean ${(meanUs / 1000).toFixed(2)} ms${failed}`;
}

/** Times the variants of one line together (in turns, slice by slice) and sets their ratios. */
async function measureLine(
  database: WorkflowDatabaseName,
  workload: Workload,
  concurrency: number,
  variants: WorkflowVariant[],
  durationMs: number,
): Promise<WorkflowRow[]> {
  // Run ids as scattered as hashed keys, and never reused: each line and variant has its own tag.
  const tag = (variant: WorkflowVariant) => `${database}-${workload.name}-${concurrency}-${variant.name}`;
  const results = await measureTogether(
    variants.map((variant) => (i: number) => variant.run(spreadKey(tag(variant), i))),
    { durationMs, slices: durationMs >= 1000 ? 10 : 2, concurrency, maxOps: 500_000 },
  );
  // One at a time, a workflow's time is its mean latency; 32 in flight, the inverse of the throughput.
  const perWorkflow = (m: Measurement | undefined) =>
    m === undefined ? Number.NaN : concurrency === 1 ? m.meanUs : 1e6 / m.opsPerSec;
  const timeOf = (name: VariantName) => perWorkflow(results[variants.findIndex((variant) => variant.name === name)]);
  return variants.map((variant, i) => {
    const time = perWorkflow(results[i]);
    const row: WorkflowRow = {
      database,
      workload: workload.name,
      steps: workload.what,
      concurrency,
      variant: variant.name,
      what: variant.what,
      result: results[i] as Measurement,
      xBare: time / timeOf('bare'),
      xFloor: time / timeOf('floor'),
    };
    const dbos = timeOf('dbos');
    const judged: readonly VariantName[] = ['floor', ...IDEM_VARIANTS];
    if (judged.includes(variant.name) && Number.isFinite(dbos)) {
      row.xFasterThanDbos = dbos / time;
    }
    return row;
  });
}

/**
 * Before timing: each durable variant runs one writing workflow twice under the same id. The
 * second run must run no step again: 10 step calls and 10 business rows in all.
 */
async function check(
  database: WorkflowDatabase,
  workloads: Workload[],
  dbos: DbosRuntime | undefined,
  idem: IdemWorkflows | undefined,
  report: WorkflowReport,
): Promise<void> {
  const writes = workloads.find((workload) => workload.name === 'writes');
  if (writes === undefined) return;
  const durable = [dbos?.variant('writes'), ...(idem?.variants('writes') ?? [])].filter(
    (variant) => variant !== undefined,
  );
  for (const variant of durable) {
    const runId = `check-${variant.name}-${randomUUID()}`;
    const before = writes.calls;
    let note: string;
    let ok = false;
    try {
      await variant.run(runId);
      await variant.run(runId);
      const ran = writes.calls - before;
      const rows = await database.ordersOf(runId);
      ok = ran === STEPS && rows === STEPS;
      note = ok
        ? `a second run of a completed workflow id ran no step again (${ran} step calls, ${rows} rows)`
        : `two runs of one workflow id made ${ran} step calls and ${rows} rows; ${STEPS} expected`;
    } catch (error) {
      note = `running one workflow id twice failed: ${describe(error)}`;
    }
    report.checks.push({ database: database.name, variant: variant.name, ok, note });
  }
}

/** Each Idem variant of each line against the floor and DBOS; a line without Idem says `not measured`. */
function judge(rows: WorkflowRow[], checks: WorkflowReport['checks']): WorkflowTargetCheck[] {
  const targets: WorkflowTargetCheck[] = [];
  for (const floor of rows.filter((row) => row.variant === 'floor')) {
    const line = (variant: VariantName) =>
      rows.find(
        (row) =>
          row.database === floor.database &&
          row.workload === floor.workload &&
          row.concurrency === floor.concurrency &&
          row.variant === variant,
      );
    const measured = IDEM_VARIANTS.filter((variant) => line(variant) !== undefined);
    const hasDbos = line('dbos') !== undefined;
    for (const variant of measured.length > 0 ? measured : (['idem'] as const)) {
      const idem = line(variant);
      const verified = checks.some(
        (check) => check.database === floor.database && check.variant === variant && check.ok,
      );
      const status = (met: boolean) =>
        idem === undefined ? 'not measured' : !verified ? 'not verified' : met ? 'met' : 'MISSED';
      const cell = { database: floor.database, workload: floor.workload, concurrency: floor.concurrency, variant };
      const xFloor = idem?.xFloor ?? Number.NaN;
      targets.push({
        ...cell,
        figure: 'time per workflow / floor',
        value: xFloor,
        target: `<= ${FLOOR_TARGET}x`,
        status: status(xFloor <= FLOOR_TARGET),
      });
      if (!hasDbos) continue;
      const faster = idem?.xFasterThanDbos ?? Number.NaN;
      targets.push({
        ...cell,
        figure: 'DBOS time per workflow / this',
        value: faster,
        target: `>= ${DBOS_TARGET}x`,
        status: status(faster >= DBOS_TARGET),
      });
    }
  }
  return targets;
}

function fmt(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}
