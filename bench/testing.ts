// How long checkIdempotency takes for one endpoint in-process: an Express app behind Idem on the
// memory store (every scenario passes) and the same app without Idem (five fail), with `verify`
// counting the charges, at the default settleMs (100) and at 0. Measured only.
import express from 'express';
import { idempotency } from '../src/adapters/express/index.js';
import { MemoryStore } from '../src/stores/memory/index.js';
import { checkIdempotency } from '../src/testing/index.js';

export interface TestingCase {
  name: string;
  runs: number;
  /** Mean wall time of a whole check, in ms. */
  meanMs: number;
  /** Mean of each scenario's slowest request, in ms. */
  scenarios: Record<string, number>;
  passed: boolean;
}

export interface TestingReport {
  cases: TestingCase[];
}

function app(protect: boolean) {
  const charges: { id: string }[] = [];
  const server = express();
  server.use(express.json());
  server.post('/charges', ...(protect ? [idempotency({ store: new MemoryStore() })] : []), (_req, res) => {
    const charge = { id: `ch_${charges.length + 1}` };
    charges.push(charge);
    res.status(201).json(charge);
  });
  return { server, charges };
}

export async function benchTesting(options: { quick: boolean; log: (line: string) => void }): Promise<TestingReport> {
  const runs = options.quick ? 1 : 5;
  const cases: TestingCase[] = [];
  for (const [name, protect, settleMs] of [
    ['express + idem, settleMs 100 (default)', true, 100],
    ['express + idem, settleMs 0', true, 0],
    ['express without idem, settleMs 100', false, 100],
  ] as const) {
    options.log(`  ${name}`);
    let total = 0;
    const scenarios: Record<string, number> = {};
    let passed = true;
    for (let run = 0; run < runs; run++) {
      const { server, charges } = app(protect);
      const started = performance.now();
      const report = await checkIdempotency(
        server,
        { method: 'POST', path: '/charges', body: { amountCents: 500 } },
        { verify: () => charges, settleMs },
      );
      total += performance.now() - started;
      passed &&= report.ok;
      // The report has no per-scenario wall time: keep each scenario's slowest request.
      for (const scenario of report.scenarios) {
        const ms = scenario.evidence.requests.reduce((max, request) => Math.max(max, request.ms), 0);
        scenarios[scenario.name] = (scenarios[scenario.name] ?? 0) + ms / runs;
      }
    }
    cases.push({ name, runs, meanMs: Math.round(total / runs), scenarios: roundAll(scenarios), passed });
  }
  return { cases };
}

function roundAll(values: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(values).map(([name, value]) => [name, Math.round(value)]));
}

export function testingSection(report: TestingReport): string {
  const lines = ['checkIdempotency, one endpoint in-process (6 scenarios, verify on)', ''];
  for (const entry of report.cases) {
    lines.push(
      `  ${entry.name.padEnd(40)} ${String(entry.meanMs).padStart(6)} ms per check (mean of ${entry.runs}), ${entry.passed ? 'all passed' : 'some failed, as expected'}`,
    );
  }
  lines.push('', '  slowest single request per scenario, ms (mean):');
  const first = report.cases[0];
  if (first) for (const [name, ms] of Object.entries(first.scenarios)) lines.push(`    ${name.padEnd(24)} ${ms}`);
  return lines.join('\n');
}
