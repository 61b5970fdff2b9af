/**
 * `npm run bench -- --only agent`: what guarding an agent's tool costs per call, against the bare
 * tool, on SQLite, PostgreSQL and Redis. Two tools, each an AI SDK-shaped `{ execute(input,
 * { toolCallId }) }`: `echo` does trivial work (returns an object built from its input), `insert`
 * writes one row into a business table (SQLite file for the SQLite store, PostgreSQL for the two
 * others), a realistic tool. For each store and tool, four operations take turns in slices of one
 * window, one call in flight:
 *
 *   bare     the tool's own execute
 *   new      guardTools(...) execute, a new toolCallId each call: claim, run, complete
 *   replay   guardTools(...) execute of a toolCallId already recorded: the stored result, no run
 *   in run   inside a durable run: a workflow of 10 guardedCall({ ctx }) steps, time per call =
 *            time per run / 10 (so it carries a tenth of the run's own start, completion and read)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guardedCall, guardTools } from '../src/agent/index.js';
import { isJournalStore } from '../src/core/journal.js';
import { Workflows } from '../src/workflow/index.js';
import { type Measurement, measureTogether } from './measure.js';
import { type Align, table } from './report.js';
import { describe, openTarget, type StoreName, servers, Unreachable } from './store-targets.js';

export const AGENT_STORES = ['sqlite', 'postgres', 'redis'] as const;
/** The business table the `insert` tool writes to (SQLite file, or PostgreSQL, dropped before and after). */
const TOOL_TABLE = 'idem_bench_agent_tool';
/** Guarded calls per durable run in the `in run` operation. */
const CALLS_PER_RUN = 10;

export interface AgentRow {
  store: StoreName;
  tool: string;
  /** Where the `insert` tool writes, for the report. */
  writesTo?: string;
  bare?: Measurement;
  guarded?: Measurement;
  replay?: Measurement;
  /** One durable run of `CALLS_PER_RUN` guarded calls: divide its latency by that for a call. */
  inRun?: Measurement;
  skipped?: string;
}

export interface AgentReport {
  durationMs: number;
  callsPerRun: number;
  rows: AgentRow[];
}

interface Options {
  stores: StoreName[];
  quick: boolean;
  log: (line: string) => void;
}

type Execute = (input: { order: string; cents: number }, options: { toolCallId: string }) => Promise<unknown>;

/** A business database the `insert` tool writes one row per call into. */
interface ToolDatabase {
  where: string;
  insert(id: string, cents: number): Promise<void>;
  close(): Promise<void>;
}

export async function benchAgent({ stores, quick, log }: Options): Promise<AgentReport> {
  const durationMs = quick ? 800 : 4000;
  const rows: AgentRow[] = [];
  for (const name of AGENT_STORES.filter((store) => stores.includes(store))) {
    log(`  agent tool guard on ${name}`);
    rows.push(...(await benchStore(name, durationMs)));
  }
  return { durationMs, callsPerRun: CALLS_PER_RUN, rows };
}

async function benchStore(name: StoreName, durationMs: number): Promise<AgentRow[]> {
  let target: Awaited<ReturnType<typeof openTarget>>;
  try {
    target = await openTarget(name);
  } catch (error) {
    if (error instanceof Unreachable) return [{ store: name, tool: '-', skipped: error.message }];
    throw error;
  }
  let database: ToolDatabase | undefined;
  try {
    database = name === 'sqlite' ? await sqliteToolDatabase() : await postgresToolDatabase();
    const tools: Record<string, Execute> = {
      echo: async (input, { toolCallId }) => ({ refunded: input.cents, order: input.order, callId: toolCallId }),
      insert: async (input, { toolCallId }) => {
        await (database as ToolDatabase).insert(toolCallId, input.cents);
        return { refunded: input.cents, order: input.order };
      },
    };
    const rows: AgentRow[] = [];
    for (const [tool, execute] of Object.entries(tools)) {
      const row = await benchTool(target.store, name, tool, execute, durationMs);
      rows.push(tool === 'insert' ? { ...row, writesTo: database.where } : row);
    }
    return rows;
  } catch (error) {
    return [{ store: name, tool: '-', skipped: describe(error) }];
  } finally {
    await database?.close().catch(() => {});
    await target.close();
  }
}

async function benchTool(
  store: Awaited<ReturnType<typeof openTarget>>['store'],
  name: StoreName,
  tool: string,
  execute: Execute,
  durationMs: number,
): Promise<AgentRow> {
  // Every run of the benchmark, and every tool, gets its own ids: the stores may hold older records.
  const run = `${tool}-${Date.now()}`;
  const input = { order: 'ord_42', cents: 500 };
  const guarded = guardTools({ [tool]: { execute } }, { store, runId: run })[tool] as { execute: Execute };
  const replayId = `${run}-replay`;
  await guarded.execute(input, { toolCallId: replayId });
  const operations = [
    (i: number) => execute(input, { toolCallId: `${run}-bare-${i}` }),
    (i: number) => guarded.execute(input, { toolCallId: `${run}-new-${i}` }),
    () => guarded.execute(input, { toolCallId: replayId }),
  ];
  if (isJournalStore(store)) {
    const workflows = new Workflows({ store });
    const definition = workflows.define(
      `bench-agent-${tool}`,
      async (ctx, runInput: { runId: string }) => {
        for (let call = 0; call < CALLS_PER_RUN; call++) {
          const toolCallId = `${runInput.runId}-${call}`;
          await guardedCall({ tool, callId: toolCallId, args: input, ctx }, () => execute(input, { toolCallId }));
        }
        return CALLS_PER_RUN;
      },
      { version: 1 },
    );
    operations.push((i: number) => definition.run(`${run}-wf-${i}`, { runId: `${run}-wf-${i}` }));
  }
  const [bare, guardedCalls, replay, inRun] = await measureTogether(operations, {
    durationMs,
    slices: durationMs >= 2000 ? 6 : 2,
  });
  return {
    store: name,
    tool,
    bare,
    guarded: guardedCalls,
    replay,
    ...(inRun === undefined ? {} : { inRun }),
  } as AgentRow;
}

async function sqliteToolDatabase(): Promise<ToolDatabase> {
  const { default: Database } = await import('better-sqlite3');
  const directory = mkdtempSync(join(tmpdir(), 'idem-bench-agent-'));
  // The SQLite store's own settings: WAL, synchronous NORMAL.
  const db = new Database(join(directory, 'business.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE ${TOOL_TABLE} (id TEXT PRIMARY KEY, cents INTEGER NOT NULL)`);
  const insert = db.prepare(`INSERT INTO ${TOOL_TABLE} (id, cents) VALUES (?, ?)`);
  return {
    where: 'SQLite file (WAL)',
    async insert(id, cents) {
      insert.run(id, cents);
    },
    async close() {
      db.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

async function postgresToolDatabase(): Promise<ToolDatabase> {
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: servers.postgres, max: 10, connectionTimeoutMillis: 2000 });
  pool.on('error', () => {});
  try {
    await pool.query(`DROP TABLE IF EXISTS "${TOOL_TABLE}"`);
  } catch (error) {
    await pool.end().catch(() => {});
    throw new Unreachable(
      `PostgreSQL at ${servers.postgres} (the insert tool's table) did not answer: ${describe(error)}`,
    );
  }
  await pool.query(`CREATE TABLE "${TOOL_TABLE}" (id TEXT PRIMARY KEY, cents INTEGER NOT NULL)`);
  return {
    where: 'PostgreSQL',
    async insert(id, cents) {
      await pool.query(`INSERT INTO "${TOOL_TABLE}" (id, cents) VALUES ($1, $2)`, [id, cents]);
    },
    async close() {
      await pool.query(`DROP TABLE IF EXISTS "${TOOL_TABLE}"`).catch(() => {});
      await pool.end();
    },
  };
}

const us = (value: number | undefined) =>
  value === undefined || !Number.isFinite(value) ? '-' : Math.round(value).toLocaleString('en-US');
/** Below this, the bare tool is too quick for a ratio to mean anything: only the overhead is shown. */
const RATIO_FLOOR_US = 10;
const ratio = (over: number, under: number) =>
  Number.isFinite(over / under) && under >= RATIO_FLOOR_US ? `${(over / under).toFixed(2)}x` : '-';

export function agentSection(report: AgentReport): string {
  const out = [
    `AGENT TOOL GUARD: one tool call at a time, ${report.durationMs} ms per operation, the operations in turns (ratios within one run);`,
    "tools: echo = trivial work; insert = one INSERT into a business table. bare = the tool's execute;",
    'new = guardTools(...) execute, a new toolCallId each call (claim, run, complete); replay = a toolCallId already recorded (no run);',
    `in run = a durable run of ${report.callsPerRun} guardedCall({ ctx }) steps (Workflows.define), its time / ${report.callsPerRun} (includes a share of the run's start and end);`,
    'overhead = mean - bare mean, in us; x bare only where bare takes 10 us or more. Other jobs on the machine may be loading it: compare ratios, not absolute figures.',
    '',
  ];
  const align: Align[] = ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'];
  const rows = report.rows.map((row) => {
    if (row.skipped !== undefined) return [row.store, `skipped: ${row.skipped}`, '', '', '', '', '', '', '', ''];
    const bare = row.bare?.meanUs ?? Number.NaN;
    const guarded = row.guarded?.meanUs ?? Number.NaN;
    const replay = row.replay?.meanUs ?? Number.NaN;
    const inRun = (row.inRun?.meanUs ?? Number.NaN) / report.callsPerRun;
    return [
      row.store,
      row.writesTo === undefined ? row.tool : `${row.tool} (${row.writesTo})`,
      us(bare),
      us(guarded),
      us(guarded - bare),
      ratio(guarded, bare),
      us(replay),
      us(replay - bare),
      us(inRun),
      us(inRun - bare),
    ];
  });
  out.push(
    table(
      [
        'store',
        'tool',
        'bare us',
        'new us',
        'new overhead',
        'new x bare',
        'replay us',
        'replay overhead',
        'in run us/call',
        'in run overhead',
      ],
      rows,
      align,
    ),
  );
  return out.join('\n');
}
