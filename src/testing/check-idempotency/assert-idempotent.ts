import { AssertionError } from 'node:assert';
import {
  type CheckIdempotencyOptions,
  checkIdempotency,
  type IdempotencyReport,
  type ScenarioReport,
} from './check-idempotency.js';
import type { CheckRequest } from './check-request.js';
import type { CheckTarget } from './serve-target.js';

/**
 * Runs `checkIdempotency` and throws node:assert's `AssertionError` when a scenario fails, with
 * each failed scenario and its evidence in the message, so node:test, Vitest and Jest show it as
 * a test failure. Resolves with the report when every scenario passes.
 *
 * @example
 * ```ts
 * test('POST /charges is safe to retry', async () => {
 *   await assertIdempotent(app, { method: 'POST', path: '/charges', body: { amountCents: 500 } });
 * });
 * ```
 */
export async function assertIdempotent(
  target: CheckTarget,
  request: CheckRequest,
  options: CheckIdempotencyOptions = {},
): Promise<IdempotencyReport> {
  const report = await checkIdempotency(target, request, options);
  if (report.ok) return report;
  throw new AssertionError({
    message: failureMessage(report),
    actual: report.failed,
    expected: [],
    operator: 'assertIdempotent',
    stackStartFn: assertIdempotent,
  });
}

/** The message of a failed check: a headline, then each failed scenario with its evidence. */
export function failureMessage(report: IdempotencyReport): string {
  const failed = report.scenarios.filter((scenario) => !scenario.ok);
  const lines = [
    `${report.target.method} ${report.target.url} is not safe to retry: ${failed.length} of ${report.scenarios.length} scenarios failed (${report.failed.join(', ')}).`,
  ];
  if (report.target.credential !== null) {
    lines.push(`(no credential in the request: every request carried ${report.target.credential})`);
  }
  for (const scenario of failed) lines.push('', ...scenarioLines(scenario));
  return lines.join('\n');
}

function scenarioLines(scenario: ScenarioReport): string[] {
  const lines = [`x ${scenario.title} (${scenario.name}): ${scenario.summary}`];
  for (const line of scenario.evidence.lines) lines.push(`    ${line}`);
  const verify = scenario.evidence.verify;
  if (verify !== undefined) {
    lines.push(
      `    verify: ${verify.before} before, ${verify.after} after: ${verify.created} created, ${verify.expected} expected`,
    );
  }
  return lines;
}
