import type { ProbeTarget } from '../../check/http-probe.js';
import type { ScenarioResult } from '../../check/scenarios.js';

/** The whole run, as `--json` prints it. */
export interface CheckReport {
  /** `credential`: the header the checker sent as the caller's credential when none was given, else null. */
  target: { method: string; url: string; verify: string | null; credential: string | null };
  passed: boolean;
  /** Ids of the scenarios that failed. */
  failed: string[];
  scenarios: ScenarioResult[];
}

export function checkReport(target: ProbeTarget, verify: URL | undefined, scenarios: ScenarioResult[]): CheckReport {
  const failed = scenarios.filter((scenario) => !scenario.passed).map((scenario) => scenario.id);
  return {
    target: {
      method: target.method,
      url: target.url.href,
      verify: verify?.href ?? null,
      credential: target.defaultCredential ?? null,
    },
    passed: failed.length === 0,
    failed,
    scenarios,
  };
}

/** The report for people: one line per scenario, its evidence indented below. */
export function formatReport(report: CheckReport, color: boolean): string {
  const paint = (code: number, text: string) => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const width = Math.max(...report.scenarios.map((scenario) => scenario.title.length));
  const lines = [
    `idem check ${report.target.method} ${report.target.url}` +
      (report.target.verify
        ? `  (verify: GET ${report.target.verify})`
        : '  (no --verify: created records are not counted)'),
  ];
  if (report.target.credential !== null) {
    lines.push(`no credential given (-H): every request carries ${report.target.credential} as the caller's.`);
  }
  lines.push('');
  for (const scenario of report.scenarios) {
    const mark = scenario.passed ? paint(32, 'PASS') : paint(31, 'FAIL');
    lines.push(`${mark}  ${scenario.title.padEnd(width)}  ${scenario.summary}`);
    for (const line of scenario.evidence) lines.push(`      ${' '.repeat(width)}  ${paint(2, line)}`);
  }
  lines.push('');
  const total = report.scenarios.length;
  if (report.passed) {
    lines.push(paint(32, `all ${total} scenarios passed.`));
  } else {
    lines.push(paint(31, `${report.failed.length} of ${total} scenarios failed: ${report.failed.join(', ')}.`));
    lines.push('The endpoint is not safe to retry. Put it behind the gateway: idem serve --upstream <its base URL>.');
  }
  return lines.join('\n');
}
