import { countOf } from '../../check/caller-credential.js';
import type { Exchange } from '../../check/exchange.js';
import { runScenarios, SCENARIO_IDS, type ScenarioId, type ScenarioResult } from '../../check/scenarios.js';
import { type CheckRequest, probeTargetOf } from './check-request.js';
import { type CheckTarget, serveTarget, type TargetKind } from './serve-target.js';

/** The scenarios `checkIdempotency` runs, in order. */
export const IDEMPOTENCY_SCENARIOS: readonly ScenarioId[] = SCENARIO_IDS;
export type { Exchange as CheckExchange };

export interface CheckIdempotencyOptions {
  /**
   * Reads back what the endpoint really created (a list endpoint, a database query): a count, a
   * list (its length is counted) or an object with `count`/`total`. Called before and after each
   * scenario; a scenario passes only if one operation created exactly one. Default: not counted.
   */
  verify?: () => unknown;
  /** Run only these scenarios. Default: all of `IDEMPOTENCY_SCENARIOS`. */
  only?: readonly IdempotencyScenarioName[];
  /** Skip these scenarios. Default: none. */
  skip?: readonly IdempotencyScenarioName[];
  /** How many duplicates are sent at once. Default 10. */
  concurrency?: number;
  /** Longest wait for one answer, and for one `verify`, in ms. Default 10000. */
  timeoutMs?: number;
  /** How long retries of a key still in progress (409, 425, 503) go on, in ms. Default 5000. */
  retryWindowMs?: number;
  /** Pause after a scenario before `verify` counts, so work that finishes late is counted, in ms. Default 100. */
  settleMs?: number;
}

/** A scenario's id, e.g. `'concurrent-duplicates'`. */
export type IdempotencyScenarioName = ScenarioId;

/** What one scenario saw. */
export interface ScenarioEvidence {
  /** The requests and answers in words, one a line (as `idem check` prints them). */
  lines: string[];
  /** Every request sent, in order: its key, status, replay mark, headers that matter and the start of its body. */
  requests: Exchange[];
  /** The status of each request, in order; `null` for no answer. */
  statuses: (number | null)[];
  /** With `verify`: the counts before and after, what was created, and what one operation should create. */
  verify?: { before: number; after: number; created: number; expected: number };
}

/** The verdict of one scenario. */
export interface ScenarioReport {
  name: IdempotencyScenarioName;
  /** In words, e.g. `'concurrent duplicates'`. */
  title: string;
  ok: boolean;
  /** One line: what happened, and why it passes or fails. */
  summary: string;
  /** When it failed: what went wrong (the summary). */
  problem?: string;
  evidence: ScenarioEvidence;
}

/** What `checkIdempotency` found. */
export interface IdempotencyReport {
  /** True when every scenario passed. */
  ok: boolean;
  target: {
    kind: TargetKind;
    method: string;
    /** The URL requests went to (an in-process app's is an ephemeral 127.0.0.1 port). */
    url: string;
    /** The credential the check added because the request had none, e.g. `cookie: idem-check=1f2e3d4c`; else `null`. */
    credential: string | null;
    /** True when `verify` counted what was created. */
    verified: boolean;
  };
  scenarios: ScenarioReport[];
  /** The names of the scenarios that failed. */
  failed: IdempotencyScenarioName[];
  /** How long the whole check took, in ms. */
  durationMs: number;
}

/**
 * Runs the scenarios of `idem check` against `target` (an in-process Express, Fastify, Koa, Hono
 * or node:http app, or a URL) with `request` as the operation: the same key repeated after
 * success, concurrent duplicates, a retry after the connection dropped mid-request, the same key
 * with another body, no key, retries at varied timing. Every request creates what the endpoint
 * creates: use a test store and database. Resolves with the report; rejects only on bad input or
 * a `verify` that fails.
 *
 * @example
 * ```ts
 * const report = await checkIdempotency(app, { method: 'POST', path: '/charges', body: { amountCents: 500 } }, {
 *   verify: () => db.prepare('SELECT count(*) AS n FROM charges').get().n,
 * });
 * if (!report.ok) console.log(report.failed);
 * ```
 */
export async function checkIdempotency(
  target: CheckTarget,
  request: CheckRequest,
  options: CheckIdempotencyOptions = {},
): Promise<IdempotencyReport> {
  const what = 'checkIdempotency';
  const started = performance.now();
  const settings = settingsOf(options, what);
  const served = await serveTarget(target, what);
  try {
    const probeTarget = probeTargetOf(served.url, served.kind !== 'url', request, what);
    const count = options.verify === undefined ? undefined : counter(options.verify, settings.timeoutMs, what);
    await count?.('before the first scenario');
    let current = '';
    const results = await runScenarios(
      {
        target: probeTarget,
        ...(count === undefined ? {} : { count: () => count(`in the "${current}" scenario`) }),
        concurrency: settings.concurrency,
        timeoutMs: settings.timeoutMs,
        retryWindowMs: settings.retryWindowMs,
        settleMs: settings.settleMs,
        hint: 'give a request (method, path, headers, body) the endpoint accepts',
        onScenario: (id) => {
          current = id;
        },
      },
      settings.scenarios,
    );
    const scenarios = results.map(scenarioReport);
    const failed = scenarios.filter((scenario) => !scenario.ok).map((scenario) => scenario.name);
    return {
      ok: failed.length === 0,
      target: {
        kind: served.kind,
        method: probeTarget.method,
        url: probeTarget.url.href,
        credential: probeTarget.defaultCredential ?? null,
        verified: count !== undefined,
      },
      scenarios,
      failed,
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    await served.close();
  }
}

function scenarioReport(result: ScenarioResult): ScenarioReport {
  const evidence: ScenarioEvidence = {
    lines: result.evidence,
    requests: result.exchanges,
    statuses: result.exchanges.map((exchange) => exchange.status),
  };
  if (result.counts !== undefined) {
    evidence.verify = { ...result.counts, created: result.counts.after - result.counts.before, expected: 1 };
  }
  return {
    name: result.id,
    title: result.title,
    ok: result.passed,
    summary: result.summary,
    ...(result.passed ? {} : { problem: result.summary }),
    evidence,
  };
}

interface Settings {
  scenarios: ScenarioId[];
  concurrency: number;
  timeoutMs: number;
  retryWindowMs: number;
  settleMs: number;
}

function settingsOf(options: CheckIdempotencyOptions, what: string): Settings {
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`[idem] ${what}: options must be an object.`);
  if (options.verify !== undefined && typeof options.verify !== 'function') {
    throw new TypeError(
      `[idem] ${what}: verify must be a function that returns a count or a list of what was created.`,
    );
  }
  for (const name of [...(options.only ?? []), ...(options.skip ?? [])]) {
    if (!(SCENARIO_IDS as readonly string[]).includes(name)) {
      throw new TypeError(
        `[idem] ${what}: no scenario ${JSON.stringify(name)}; choose from ${SCENARIO_IDS.join(', ')}.`,
      );
    }
  }
  const scenarios = (options.only ?? SCENARIO_IDS).filter((id) => !(options.skip ?? []).includes(id));
  if (scenarios.length === 0) throw new TypeError(`[idem] ${what}: only and skip leave no scenario to run.`);
  return {
    scenarios,
    concurrency: whole(options.concurrency, 10, 2, 500, 'concurrency', what),
    timeoutMs: whole(options.timeoutMs, 10_000, 1, 600_000, 'timeoutMs', what),
    retryWindowMs: whole(options.retryWindowMs, 5_000, 0, 600_000, 'retryWindowMs', what),
    settleMs: whole(options.settleMs, 100, 0, 60_000, 'settleMs', what),
  };
}

function whole(value: number | undefined, fallback: number, min: number, max: number, name: string, what: string) {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`[idem] ${what}: ${name} ${value} must be a whole number from ${min} to ${max}.`);
  }
  return value;
}

/** `verify`, counted, within `timeoutMs`, with errors that say where it failed. */
function counter(verify: () => unknown, timeoutMs: number, what: string) {
  return async function count(when: string): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    let value: unknown;
    try {
      value = await Promise.race([
        Promise.resolve().then(verify),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`it did not settle within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (error) {
      throw new Error(
        `[idem] ${what}: verify failed ${when}: ${(error as Error)?.message ?? String(error)}. ` +
          'Fix verify: it must read back what the endpoint created (a count or a list).',
        { cause: error },
      );
    } finally {
      clearTimeout(timer);
    }
    const counted = countOf(value);
    if (counted === undefined) {
      throw new TypeError(
        `[idem] ${what}: verify returned ${describe(value)} ${when}; return a count, a list, or an object with "count" or "total".`,
      );
    }
    return counted;
  };
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}
