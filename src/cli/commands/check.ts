import type { Command } from 'commander';
import { addDefaultCredential, countOf } from '../../check/caller-credential.js';
import { type ProbeTarget, probe } from '../../check/http-probe.js';
import { runScenarios, SCENARIO_IDS, type ScenarioId } from '../../check/scenarios.js';
import { checkReport, formatReport } from '../check/check-report.js';
import { assertReachable } from '../check/reachable.js';
import { CliError, usageError } from '../cli-error.js';
import { parseDuration } from '../duration.js';

interface CheckFlags {
  method: string;
  body?: string;
  header: string[];
  verify?: string;
  json?: boolean;
  concurrency: string;
  timeout: string;
  retryWindow: string;
  settle: string;
  only?: string;
}

/** `idem check <url>`: tests whether an endpoint is safe to retry. */
export function registerCheck(program: Command): void {
  program
    .command('check')
    .summary('test whether an HTTP endpoint is safe to retry')
    .description(
      'Send the requests that break endpoints which are not idempotent, each scenario with fresh keys: ' +
        `${SCENARIO_IDS.join(', ')}. Each request creates what the endpoint creates: point it at a test ` +
        'environment. --verify reads a list endpoint (a JSON array, an object with count/total, or with one array) ' +
        'to count what was really created. Requests carry the headers given with -H; when none of them is a ' +
        'credential (Authorization, an API-key header, Cookie), the checker sends a cookie of its own, ' +
        'idem-check=<id>, as Idem scopes keys by the caller and refuses keyed requests from unknown ones. ' +
        'Exits 1 when a scenario fails.',
    )
    .argument('<url>', 'the endpoint, e.g. http://127.0.0.1:8080/payments')
    .option('-X, --method <method>', 'request method', 'POST')
    .option(
      '-d, --body <json>',
      'request body, sent as application/json unless a content-type header is given (default {})',
    )
    .option(
      '-H, --header <name:value>',
      'a header for every request (repeat for more), e.g. authorization:Bearer x',
      collect,
      [],
    )
    .option('--verify <url>', 'GET this URL before and after each scenario to count the records created')
    .option('--concurrency <n>', 'duplicates sent at once', '10')
    .option('--timeout <duration>', 'longest wait for one answer', '10s')
    .option('--retry-window <duration>', 'how long to keep retrying a key that is still in progress', '15s')
    .option('--settle <duration>', 'pause before counting, so work that finishes late is counted', '300ms')
    .option('--only <ids>', `run only these scenarios, comma-separated: ${SCENARIO_IDS.join(', ')}`)
    .option('--json', 'print the report as JSON')
    .action(async (url: string, flags: CheckFlags) => {
      const target = targetOf(url, flags);
      const verify = flags.verify === undefined ? undefined : httpUrl(flags.verify, '--verify');
      const only = onlyOf(flags.only);
      const concurrency = Number(flags.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 2 || concurrency > 500) {
        throw usageError(`--concurrency ${JSON.stringify(flags.concurrency)}: use a whole number from 2 to 500.`);
      }
      const timeoutMs = parseDuration(flags.timeout, '--timeout');
      await assertReachable(target.url, 'the endpoint', 'Check the URL and that the server is running.');
      const count = verify === undefined ? undefined : counter(verify, target, timeoutMs);
      await count?.();
      const scenarios = await runScenarios(
        {
          target,
          ...(count === undefined ? {} : { count }),
          concurrency,
          timeoutMs,
          retryWindowMs: parseDuration(flags.retryWindow, '--retry-window'),
          settleMs: parseDuration(flags.settle, '--settle'),
          hint: 'give --method, --body and --header values the endpoint accepts',
        },
        only,
      );
      const report = checkReport(target, verify, scenarios);
      if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else process.stdout.write(`${formatReport(report, process.stdout.isTTY === true)}\n`);
      if (!report.passed) process.exitCode = 1;
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function httpUrl(text: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usageError(`${what} ${JSON.stringify(text)} is not a URL; write http://host:port/path.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usageError(`${what} ${JSON.stringify(text)} must be an http:// or https:// URL.`);
  }
  return url;
}

function targetOf(url: string, flags: CheckFlags): ProbeTarget {
  const method = methodOf(flags.method);
  const headers = headersOf(flags.header);
  const defaultCredential = addDefaultCredential(headers);
  const body = bodyOf(flags.body, method, headers);
  return {
    url: httpUrl(url, 'the endpoint URL'),
    method,
    headers,
    body,
    ...(defaultCredential === undefined ? {} : { defaultCredential }),
  };
}

/** The upper-case method; a safe one (GET, HEAD, OPTIONS) is refused, as there is nothing to check. */
function methodOf(text: string): string {
  const method = text.toUpperCase();
  if (!/^[A-Z]+$/.test(method)) throw usageError(`--method ${JSON.stringify(text)} is not an HTTP method.`);
  if (['GET', 'HEAD', 'OPTIONS'].includes(method)) {
    throw usageError(
      `--method ${method} is safe by definition; check the endpoint that changes something (POST, PUT, PATCH, DELETE).`,
    );
  }
  return method;
}

/** The `-H name:value` flags by lower-case name; `Idempotency-Key` is refused, the checker sends its own. */
function headersOf(flags: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const header of flags) {
    const at = header.indexOf(':');
    const name = header.slice(0, at).trim().toLowerCase();
    if (at <= 0 || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) {
      throw usageError(`--header ${JSON.stringify(header)}: write name:value, e.g. authorization:Bearer sk_test.`);
    }
    if (name === 'idempotency-key') throw usageError('--header idempotency-key: the checker sends its own fresh keys.');
    headers[name] = header.slice(at + 1).trim();
  }
  return headers;
}

/**
 * The request body: `--body`, else `{}` for POST, PUT and PATCH. Without a content-type header it
 * must be JSON, and `headers` gets `content-type: application/json`.
 */
function bodyOf(text: string | undefined, method: string, headers: Record<string, string>): Buffer | undefined {
  const bodyText = text ?? (['POST', 'PUT', 'PATCH'].includes(method) ? '{}' : undefined);
  if (bodyText === undefined) return undefined;
  if (headers['content-type'] === undefined) {
    try {
      JSON.parse(bodyText);
    } catch (error) {
      throw usageError(
        `--body is not JSON (${(error as Error).message}); fix it, or give its type with -H content-type:...`,
      );
    }
    headers['content-type'] = 'application/json';
  }
  return Buffer.from(bodyText);
}

function onlyOf(only: string | undefined): ScenarioId[] {
  if (only === undefined) return [...SCENARIO_IDS];
  const ids = only
    .split(',')
    .map((id) => id.trim())
    .filter((id) => id !== '');
  for (const id of ids) {
    if (!(SCENARIO_IDS as readonly string[]).includes(id)) {
      throw usageError(`--only: no scenario ${JSON.stringify(id)}; choose from ${SCENARIO_IDS.join(', ')}.`);
    }
  }
  if (ids.length === 0) throw usageError('--only is empty.');
  return ids as ScenarioId[];
}

/** Reads the verify URL (with the target's headers, for credentials) and counts what it lists. */
function counter(verify: URL, target: ProbeTarget, timeoutMs: number): () => Promise<number> {
  const headers = { ...target.headers };
  delete headers['content-type'];
  return async function count() {
    const answer = await probe({ url: verify, method: 'GET', headers, body: undefined }, { timeoutMs });
    if (!answer.ok) throw new CliError(`--verify ${verify.href} got no answer: ${answer.error}.`);
    if (answer.status < 200 || answer.status >= 300) {
      throw new CliError(
        `--verify ${verify.href} answered ${answer.status}; it must answer 2xx with a JSON list or count.`,
      );
    }
    let value: unknown;
    try {
      value = JSON.parse(answer.body.toString('utf8'));
    } catch {
      throw new CliError(
        `--verify ${verify.href} did not answer JSON; it must list or count the records the endpoint creates.`,
      );
    }
    const counted = countOf(value);
    if (counted === undefined) {
      throw new CliError(
        `--verify ${verify.href}: cannot count its answer; give a URL that answers a JSON array, a number, or an object with "count", "total" or one array.`,
      );
    }
    return counted;
  };
}
