import { AssertionError } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CRASH_ENV, CRASH_FILES } from './crash-scenario.js';

export interface CheckCrashesOptions {
  /** Longest a child process may run before it is killed and the check fails, in ms. Default 30000. */
  timeoutMs?: number;
  /** Re-runs after a kill, until one exits 0. Default 3. */
  reruns?: number;
  /** Pause before each re-run (let a lease run out), in ms. Default 0. */
  rerunDelayMs?: number;
  /** Node's options for the child. Default this process's (`--import tsx` included). */
  execArgv?: readonly string[];
  /** Stop after this many kill points (the first ones). Default: every boundary. */
  maxPoints?: number;
}

/** One kill point: where the child was killed, and what the re-runs then did. */
export interface CrashPoint {
  /** 1-based number of the boundary. */
  at: number;
  /** The boundary, e.g. `after effect "charge order-1"` or `after claim (run)`. */
  boundary: string;
  /** True when the child died by SIGKILL there (false: it finished first, the boundary was not reached). */
  killed: boolean;
  /** Re-runs until one exited 0. */
  reruns: number;
  /** True when a re-run finished (exit 0). */
  completed: boolean;
  /** Effects counted over the killed run and its re-runs, by name. */
  effects: Record<string, number>;
  /** Effects that happened more often than in a run without a kill. */
  duplicated: string[];
  /** Effects that happened less often than in a run without a kill. */
  lost: string[];
  ok: boolean;
  /** When not ok: what went wrong, with the kill point. */
  problem?: string;
  /** The last re-run's stderr, when it did not finish. */
  stderr?: string;
}

/** What `checkCrashes` found. */
export interface CrashReport {
  ok: boolean;
  /** The boundaries of a run without a kill, in order. */
  boundaries: string[];
  /** Effects of a run without a kill, by name: what each kill point is compared to. */
  expected: Record<string, number>;
  points: CrashPoint[];
  /** How long the whole check took, in ms. */
  durationMs: number;
}

/**
 * Runs the module `scenario` (which calls `crashScenario`) in a child process once to the end to
 * learn its boundaries and effects; then, for each boundary in turn, in a fresh directory, runs it
 * again and kills it there (SIGKILL), re-runs it until it finishes, and compares the effects with
 * the run without a kill. Reports any effect that happened twice (or never), with the kill point.
 */
export async function checkCrashes(scenario: string | URL, options: CheckCrashesOptions = {}): Promise<CrashReport> {
  const started = performance.now();
  const path = scenario instanceof URL || scenario.startsWith('file:') ? fileURLToPath(scenario) : scenario;
  if (!existsSync(path))
    throw new TypeError(
      `[idem] checkCrashes: no module at ${path}; give the path of a module that calls crashScenario.`,
    );
  const settings = {
    timeoutMs: options.timeoutMs ?? 30_000,
    reruns: options.reruns ?? 3,
    rerunDelayMs: options.rerunDelayMs ?? 0,
    execArgv: [...(options.execArgv ?? process.execArgv)],
  };
  const clean = await inFreshDir(async (dir) => {
    const exit = await runChild(path, dir, 1, undefined, settings);
    if (exit.code !== 0) {
      throw new Error(
        `[idem] checkCrashes: ${path} failed without any kill (${exitText(exit)}); fix it first:\n${exit.stderr}`,
      );
    }
    return { boundaries: boundariesOf(dir), effects: effectsOf(dir) };
  });
  if (clean.boundaries.length === 0) {
    throw new Error(
      '[idem] checkCrashes: the scenario reached no boundary; call effect(name) after each effect, or pass onEvent to Idem.',
    );
  }
  const points: CrashPoint[] = [];
  const count = Math.min(clean.boundaries.length, options.maxPoints ?? Number.POSITIVE_INFINITY);
  for (let at = 1; at <= count; at++) {
    points.push(await inFreshDir((dir) => crashAt(path, dir, at, clean, settings)));
  }
  return {
    ok: points.every((point) => point.ok),
    boundaries: clean.boundaries,
    expected: clean.effects,
    points,
    durationMs: Math.round(performance.now() - started),
  };
}

/** `checkCrashes`, throwing node:assert's `AssertionError` that lists each failing kill point. */
export async function assertCrashSafe(scenario: string | URL, options: CheckCrashesOptions = {}): Promise<CrashReport> {
  const report = await checkCrashes(scenario, options);
  if (report.ok) return report;
  const failed = report.points.filter((point) => !point.ok);
  const lines = [
    `${failed.length} of ${report.points.length} kill points broke the scenario (expected effects: ${JSON.stringify(report.expected)}):`,
  ];
  for (const point of failed) lines.push(`  killed at #${point.at} ${point.boundary}: ${point.problem}`);
  throw new AssertionError({
    message: lines.join('\n'),
    actual: failed.map((p) => p.at),
    expected: [],
    operator: 'assertCrashSafe',
    stackStartFn: assertCrashSafe,
  });
}

type Settings = { timeoutMs: number; reruns: number; rerunDelayMs: number; execArgv: string[] };

async function crashAt(
  path: string,
  dir: string,
  at: number,
  clean: { boundaries: string[]; effects: Record<string, number> },
  settings: Settings,
): Promise<CrashPoint> {
  const boundary = clean.boundaries[at - 1] ?? `boundary ${at}`;
  const first = await runChild(path, dir, 1, at, settings);
  const killed = first.signal === 'SIGKILL';
  let reruns = 0;
  let last = first;
  if (killed) {
    while (reruns < settings.reruns) {
      reruns += 1;
      if (settings.rerunDelayMs > 0) await sleep(settings.rerunDelayMs);
      last = await runChild(path, dir, reruns + 1, undefined, settings);
      if (last.code === 0) break;
    }
  }
  const completed = last.code === 0;
  const effects = effectsOf(dir);
  const names = new Set([...Object.keys(effects), ...Object.keys(clean.effects)]);
  const duplicated = [...names].filter((name) => (effects[name] ?? 0) > (clean.effects[name] ?? 0));
  const lost = [...names].filter((name) => (effects[name] ?? 0) < (clean.effects[name] ?? 0));
  const problems = [
    ...(completed ? [] : [`no re-run finished (${exitText(last)})`]),
    ...duplicated.map(
      (name) => `"${name}" happened ${effects[name]} times, ${clean.effects[name] ?? 0} without a kill`,
    ),
    ...(completed
      ? lost.map((name) => `"${name}" happened ${effects[name] ?? 0} times, ${clean.effects[name]} without a kill`)
      : []),
  ];
  return {
    at,
    boundary,
    killed,
    reruns,
    completed,
    effects,
    duplicated,
    lost,
    ok: problems.length === 0,
    ...(problems.length === 0 ? {} : { problem: problems.join('; ') }),
    ...(completed ? {} : { stderr: last.stderr }),
  };
}

interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function runChild(
  path: string,
  dir: string,
  run: number,
  at: number | undefined,
  settings: Settings,
): Promise<ChildExit> {
  const env: NodeJS.ProcessEnv = { ...process.env, [CRASH_ENV.dir]: dir, [CRASH_ENV.run]: String(run) };
  if (at === undefined) delete env[CRASH_ENV.at];
  else env[CRASH_ENV.at] = String(at);
  // Under node:test the child must not run as a test file of its own.
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, [...settings.execArgv, path], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), settings.timeoutMs);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr: stderr.slice(-4000) });
    });
  });
}

function boundariesOf(dir: string): string[] {
  return linesOf(join(dir, CRASH_FILES.boundaries)).map((line) => line.split('\t')[2] ?? line);
}

function effectsOf(dir: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of linesOf(join(dir, CRASH_FILES.effects))) counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

function linesOf(file: string): string[] {
  return existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
    : [];
}

function exitText(exit: ChildExit): string {
  return exit.signal === null ? `exit ${exit.code}` : `killed by ${exit.signal}`;
}

async function inFreshDir<T>(work: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'idem-crash-'));
  try {
    return await work(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
