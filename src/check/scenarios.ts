import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Exchange, exchangeOf } from './exchange.js';
import { type ProbeOptions, type ProbeResult, type ProbeTarget, probe } from './http-probe.js';
import { otherBody } from './other-body.js';
import {
  describe,
  distinctBodies,
  isInProgress,
  isReplayed,
  isSuccess,
  replayedNote,
  sameAnswer,
  statusesOf,
  tally,
} from './probe-answers.js';

/** What one scenario found. */
export interface ScenarioResult {
  /** Stable id, for `--only` and `--json`. */
  id: ScenarioId;
  title: string;
  passed: boolean;
  /** One line: what happened, and why it passes or fails. */
  summary: string;
  /** The requests and answers behind the verdict. */
  evidence: string[];
  /** With `--verify`: how many records the scenario really created. */
  created?: number;
  /** With `--verify`: the count read before and after the scenario. */
  counts?: { before: number; after: number };
  /** Every request the scenario sent, in the order they were sent, and what came back. */
  exchanges: Exchange[];
}

export interface CheckSettings {
  target: ProbeTarget;
  /** Reads the number of records the endpoint created so far; absent without `--verify`. */
  count?: () => Promise<number>;
  /** How many duplicates are sent at once. Default 10. */
  concurrency: number;
  /** Longest wait for one answer, in ms. */
  timeoutMs: number;
  /** How long retries of a key still in progress go on, in ms. */
  retryWindowMs: number;
  /** Pause before reading `count` after a scenario, so late work is counted, in ms. */
  settleMs: number;
  /** What to do when the first request of a scenario fails. Default: send what the endpoint accepts. */
  hint?: string;
  /** Told the id of each scenario as it starts. */
  onScenario?: (id: ScenarioId) => void;
}

/** The settings of one scenario's run, with what it records on the way. */
interface ScenarioRun extends CheckSettings {
  exchanges: Exchange[];
  counts?: { before: number; after: number };
}

interface Scenario {
  id: ScenarioId;
  title: string;
  run(settings: ScenarioRun): Promise<Omit<ScenarioResult, 'id' | 'title' | 'exchanges' | 'counts'>>;
}

export const SCENARIO_IDS = [
  'retry-after-success',
  'concurrent-duplicates',
  'dropped-connection',
  'same-key-other-body',
  'no-key',
  'varied-timing',
] as const;
export type ScenarioId = (typeof SCENARIO_IDS)[number];

/**
 * The scenarios, in the order the idempotency literature gives them (the IETF Idempotency-Key
 * draft, Stripe's and Brandur Leach's write-ups): a retry after success, concurrent duplicates,
 * a retry after a dropped connection, the key reused with another body, no key, and retries at
 * varied timing. Each uses fresh keys; with `count` each also checks what was really created.
 */
export const SCENARIOS: readonly Scenario[] = [
  {
    id: 'retry-after-success',
    title: 'retry after success',
    async run(settings) {
      const key = randomUUID();
      const { value, created } = await measured(settings, async () => {
        const first = await send(settings, { key });
        const retry = first.ok && isSuccess(first.status) ? await send(settings, { key }) : undefined;
        return { first, retry };
      });
      const { first, retry } = value;
      const evidence = [`1st  ${describe(first)}`];
      if (retry === undefined) return firstFailed(settings, first, evidence);
      evidence.push(`2nd  ${describe(retry)} (same key, same body)`);
      if (!sameAnswer(first, retry)) {
        return verdict(false, 'the retry got a different answer: the request ran again', evidence, created);
      }
      return verdict(
        created === undefined || created === 1,
        `the retry got the first answer back${replayedNote(retry)}`,
        evidence,
        created,
      );
    },
  },
  {
    id: 'concurrent-duplicates',
    title: 'concurrent duplicates',
    async run(settings) {
      const key = randomUUID();
      const { value, created } = await measured(settings, async () => {
        const all = await Promise.all(Array.from({ length: settings.concurrency }, () => send(settings, { key })));
        const after = await settled(settings, key);
        return { all, after };
      });
      const { all, after } = value;
      const successes = all.filter((answer) => answer.ok && isSuccess(answer.status));
      const distinct = distinctBodies(successes);
      const evidence = [
        `${all.length} sent at once with one key: ${tally(all)}`,
        `distinct successful answers: ${distinct}`,
        `then, once settled: ${describe(after)}`,
      ];
      if (distinct > 1) {
        return verdict(
          false,
          `${distinct} of the duplicates ran: they got ${distinct} different successful answers`,
          evidence,
          created,
        );
      }
      if (!(after.ok && isSuccess(after.status))) {
        return verdict(
          false,
          'no duplicate got a successful answer, even after the others finished',
          evidence,
          created,
        );
      }
      if (successes[0] !== undefined && !sameAnswer(successes[0], after)) {
        return verdict(false, 'a later retry got another answer than the duplicate that ran', evidence, created);
      }
      const replays = successes.filter(isReplayed).length;
      const waited = all.length - successes.length;
      const others = [
        ...(replays > 0 ? [`${replays} got its answer replayed`] : []),
        ...(waited > 0
          ? [`${waited} got ${statusesOf(all.filter((a) => !successes.includes(a)))}, then its answer`]
          : []),
        ...(successes.length - replays > 1 ? [`${successes.length - replays - 1} got the same answer`] : []),
      ];
      return verdict(created === undefined || created === 1, `one ran; ${others.join('; ')}`, evidence, created);
    },
  },
  {
    id: 'dropped-connection',
    title: 'retry after a dropped connection',
    async run(settings) {
      const key = randomUUID();
      const { value, created } = await measured(settings, async () => {
        const dropped = await send(settings, { key, dropAfterMs: 0 });
        await sleep(settings.settleMs);
        const retry = await settled(settings, key);
        const again = retry.ok && isSuccess(retry.status) ? await send(settings, { key }) : undefined;
        return { dropped, retry, again };
      });
      const { dropped, retry, again } = value;
      const evidence = [
        dropped.ok
          ? `1st  answered before the checker could drop it: ${describe(dropped)}`
          : `1st  connection dropped right after the request was sent (${dropped.error})`,
        `retry ${describe(retry)}`,
      ];
      if (again === undefined) {
        return verdict(
          false,
          'the retry after the dropped connection never got a successful answer',
          evidence,
          created,
        );
      }
      evidence.push(`again ${describe(again)}`);
      if (!sameAnswer(retry, again)) {
        return verdict(false, 'the retries got different answers: each one ran', evidence, created);
      }
      if (created !== undefined && created !== 1) {
        const why = created > 1 ? 'the dropped request and its retry both ran' : 'nothing was created';
        return verdict(false, `${created} created for one key: ${why}`, evidence, created);
      }
      return verdict(true, `the retry got one answer and kept it${replayedNote(retry)}`, evidence, created);
    },
  },
  {
    id: 'same-key-other-body',
    title: 'same key, another body',
    async run(settings) {
      const key = randomUUID();
      const other = otherBody(settings.target);
      const { value, created } = await measured(settings, async () => {
        const first = await send(settings, { key });
        const reused =
          first.ok && isSuccess(first.status) ? await send(settings, { key, body: other.body }) : undefined;
        return { first, reused };
      });
      const { first, reused } = value;
      const evidence = [`1st  ${describe(first)}`];
      if (reused === undefined) return firstFailed(settings, first, evidence);
      evidence.push(`2nd  ${describe(reused)} (same key, ${other.change})`);
      if (!reused.ok) return verdict(false, `the reused key got no answer: ${reused.error}`, evidence, created);
      if (isSuccess(reused.status)) {
        const what = sameAnswer(first, reused)
          ? "was answered with the first request's response"
          : 'ran as a new request';
        return verdict(false, `a different request under a used key ${what}; expected 422`, evidence, created);
      }
      if (reused.status >= 500 || reused.status === 408 || reused.status === 429) {
        return verdict(false, `a reused key was answered ${reused.status}; expected 422`, evidence, created);
      }
      const note = reused.status === 422 ? '' : ` (the IETF draft asks for 422; ${reused.status} still refuses it)`;
      return verdict(
        created === undefined || created === 1,
        `the other body was refused with ${reused.status}${note}`,
        evidence,
        created,
      );
    },
  },
  {
    id: 'no-key',
    title: 'no key',
    async run(settings) {
      const { value, created } = await measured(settings, async () => [
        await send(settings, {}),
        await send(settings, {}),
      ]);
      const [first, second] = value as [ProbeResult, ProbeResult];
      const evidence = [
        `1st  ${describe(first)} (no Idempotency-Key)`,
        `2nd  ${describe(second)} (no Idempotency-Key)`,
      ];
      if (!first.ok || !second.ok) return verdict(false, 'a request without a key got no answer', evidence, created);
      if (isReplayed(first) || isReplayed(second)) {
        return verdict(false, 'a request without a key was answered with a replay', evidence, created);
      }
      if (first.status >= 500 || second.status >= 500) {
        return verdict(false, 'a request without a key failed with a server error', evidence, created);
      }
      if (!isSuccess(first.status) && !isSuccess(second.status) && first.status === second.status) {
        return verdict(
          true,
          `keys are required: a request without one is refused with ${first.status}`,
          evidence,
          created,
        );
      }
      if (isSuccess(first.status) && isSuccess(second.status)) {
        return verdict(true, 'keys are optional: each request without one ran, unprotected', evidence, created);
      }
      return verdict(false, 'two identical requests without a key got inconsistent answers', evidence, created);
    },
  },
  {
    id: 'varied-timing',
    title: 'retries at varied timing',
    async run(settings) {
      const key = randomUUID();
      const offsets = [0, 1, 5, 20, 50, 100, 200, 400, 800];
      const { value, created } = await measured(settings, () =>
        Promise.all(
          offsets.map(async (offsetMs) => {
            await sleep(offsetMs);
            const first = await send(settings, { key });
            const final = first.ok && !isInProgress(first) ? first : await settled(settings, key);
            return { first, final };
          }),
        ),
      );
      const finals = value.map((entry) => entry.final);
      const successes = finals.filter((answer) => answer.ok && isSuccess(answer.status));
      const distinct = distinctBodies(successes);
      const evidence = [
        `${offsets.length} retries with one key at ${offsets.join(', ')} ms: first answers ${tally(value.map((e) => e.first))}`,
        `after retrying 409s: ${tally(finals)}; distinct successful answers: ${distinct}`,
      ];
      if (successes.length !== finals.length) {
        return verdict(
          false,
          `${finals.length - successes.length} of the retries never got a successful answer`,
          evidence,
          created,
        );
      }
      if (distinct > 1)
        return verdict(
          false,
          `the retries got ${distinct} different answers: it ran ${distinct} times`,
          evidence,
          created,
        );
      return verdict(created === undefined || created === 1, 'every retry got the same answer', evidence, created);
    },
  },
];

/** Runs the chosen scenarios one after another, so that each one's count is its own. */
export async function runScenarios(
  settings: CheckSettings,
  only: readonly ScenarioId[] = SCENARIO_IDS,
): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  for (const scenario of SCENARIOS) {
    if (!only.includes(scenario.id)) continue;
    settings.onScenario?.(scenario.id);
    const run: ScenarioRun = { ...settings, exchanges: [] };
    const result = await scenario.run(run);
    results.push({
      id: scenario.id,
      title: scenario.title,
      ...result,
      ...(run.counts === undefined ? {} : { counts: run.counts }),
      exchanges: run.exchanges,
    });
  }
  return results;
}

async function send(settings: ScenarioRun, options: Omit<ProbeOptions, 'timeoutMs'>): Promise<ProbeResult> {
  // Logged in the order sent, so the evidence reads as the scenario ran.
  const at = settings.exchanges.length;
  settings.exchanges.push(exchangeOf(options, { ok: false, error: 'no answer yet', dropped: false, ms: 0 }));
  const answer = await probe(settings.target, { timeoutMs: settings.timeoutMs, ...options });
  settings.exchanges[at] = exchangeOf(options, answer);
  return answer;
}

/** Sends `key` again until it is no longer in progress (409, 425, 503, no answer), within the retry window. */
async function settled(settings: ScenarioRun, key: string): Promise<ProbeResult> {
  const deadline = performance.now() + settings.retryWindowMs;
  let pauseMs = 50;
  for (;;) {
    const answer = await send(settings, { key });
    if (!isInProgress(answer) || performance.now() + pauseMs > deadline) return answer;
    await sleep(pauseMs);
    pauseMs = Math.min(pauseMs * 2, 1000);
  }
}

async function measured<T>(settings: ScenarioRun, work: () => Promise<T>): Promise<{ value: T; created?: number }> {
  if (settings.count === undefined) return { value: await work() };
  const before = await settings.count();
  const value = await work();
  await sleep(settings.settleMs);
  const after = await settings.count();
  settings.counts = { before, after };
  return { value, created: after - before };
}

function verdict(passed: boolean, summary: string, evidence: string[], created: number | undefined) {
  let line = summary;
  if (created !== undefined) {
    evidence.push(`verify: ${created} created`);
    if (!passed && created !== 1 && !/created/.test(summary)) line = `${summary}; ${created} created for one operation`;
    else if (passed) line = `${summary}; ${created} created`;
  }
  return { passed, summary: line, evidence, ...(created === undefined ? {} : { created }) };
}

function firstFailed(settings: CheckSettings, first: ProbeResult, evidence: string[]) {
  const why = first.ok
    ? `the first request was answered ${first.status}, not 2xx`
    : `the first request got no answer (${first.error})`;
  const hint = settings.hint ?? 'send a method, body and headers the endpoint accepts';
  return verdict(false, `${why}: ${hint}`, evidence, undefined);
}
