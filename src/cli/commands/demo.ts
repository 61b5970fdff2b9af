import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { Command } from 'commander';
import type { Store } from '../../core/store.js';
import { CliError, reasonOf, usageError } from '../cli-error.js';
import { curlLines, type DemoPhase, demoTable } from '../demo/demo-report.js';
import { PaymentsApi } from '../demo/payments-api.js';
import { type LogicalPayment, logicalPayments, retryStorm } from '../demo/retry-storm.js';
import { Gateway } from '../gateway/gateway.js';
import { describeStore, openStore, parseStoreUrl } from '../store-url.js';
import { nextSignal } from './serve.js';

interface DemoFlags {
  exit?: boolean;
  port: string;
  apiPort: string;
  store?: string;
  payments: string;
}

/** `idem demo`: a payments API, a retry storm against it, then through the gateway. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .summary('see the gateway stop double charges, with no set-up')
    .description(
      'Start a small payments API that charges on every POST, hit it with a storm of retried, concurrent and ' +
        'duplicated requests, first directly and then through the gateway (on SQLite in a temporary directory), ' +
        'and print the charges made each way. Then both keep running on loopback, with curl lines to try.',
    )
    .option('--exit', 'stop after printing the result table (for scripts and CI)')
    .option('-p, --port <port>', 'gateway port; a busy port falls back to a free one', '8080')
    .option('--api-port <port>', 'payments API port; a busy port falls back to a free one', '3000')
    .option('--store <url>', 'the gateway store (default: a new SQLite file in a temporary directory)')
    .option('--payments <n>', 'logical payments in the storm, 20 attempts each', '5')
    .action(runDemo);
}

async function runDemo(flags: DemoFlags): Promise<void> {
  const payments = paymentCountOf(flags.payments);
  const gatewayPort = portOf(flags.port, '--port');
  const apiPort = portOf(flags.apiPort, '--api-port');
  const directory = flags.store === undefined ? mkdtempSync(join(tmpdir(), 'idem-demo-')) : undefined;
  const storeUrl = flags.store ?? `sqlite:${join(directory as string, 'idem.db')}`;
  const spec = parseStoreUrl(storeUrl);
  const api = new PaymentsApi();
  let store: Store | undefined;
  let gateway: Gateway | undefined;
  try {
    const apiUrl = await listenOrFallback((port) => api.listen(port), apiPort);
    store = await openStore(spec);
    gateway = new Gateway({ upstream: apiUrl, store, leaseMs: 10_000, graceMs: 2000 });
    const gatewayUrl = await listenOrFallback((port) => (gateway as Gateway).listen(port), gatewayPort);

    const planned = logicalPayments(payments);
    const intended = planned.reduce((sum, payment) => sum + payment.amount, 0);
    const phases = await stormBothWays(api, planned, apiUrl, gatewayUrl);
    process.stdout.write(`${demoTable(payments, intended, phases)}\n`);
    if (flags.exit) return;

    const stop = nextSignal();
    process.stdout.write(`\n${curlLines(gatewayUrl, apiUrl, selfCommand(), describeStore(spec))}\n`);
    await stop;
    process.stdout.write('\nidem: demo stopped.\n');
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`the demo failed: ${reasonOf(error)}`, undefined, { cause: error });
  } finally {
    await gateway?.close();
    await api.close();
    await store?.close();
    if (directory !== undefined) rmSync(directory, { recursive: true, force: true });
  }
}

function paymentCountOf(text: string): number {
  const payments = Number(text);
  if (!Number.isInteger(payments) || payments < 1 || payments > 50) {
    throw usageError(`--payments ${JSON.stringify(text)}: use a whole number from 1 to 50.`);
  }
  return payments;
}

/** The retry storm straight at the API, then through the gateway: the charges each one made. */
async function stormBothWays(
  api: PaymentsApi,
  planned: LogicalPayment[],
  apiUrl: string,
  gatewayUrl: string,
): Promise<DemoPhase[]> {
  const phases: DemoPhase[] = [];
  for (const [label, base] of [
    ['direct to the API', apiUrl],
    ['through idem serve', gatewayUrl],
  ] as const) {
    api.payments.length = 0;
    const storm = await retryStorm(base, fresh(planned, label));
    // Charges still being made for clients that gave up are charges too: let them land.
    await new Promise((resolve) => setTimeout(resolve, 150));
    phases.push({ label, storm, charges: api.payments.length, chargedCents: api.charged });
  }
  api.payments.length = 0;
  return phases;
}

/** The same payments with new keys, so the second phase does not replay the first one's records. */
function fresh(payments: LogicalPayment[], label: string): LogicalPayment[] {
  return payments.map((payment) => ({ ...payment, key: `${payment.key}-${label.startsWith('direct') ? 'd' : 'i'}` }));
}

function portOf(text: string, what: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535)
    throw usageError(`${what} ${JSON.stringify(text)} is not a port (0 to 65535).`);
  return port;
}

async function listenOrFallback(listen: (port: number) => Promise<string>, port: number): Promise<string> {
  try {
    return await listen(port);
  } catch (error) {
    if ((error as { code?: string }).code !== 'EADDRINUSE') throw error;
    return listen(0);
  }
}

/** How this program was started, so the printed commands can be pasted as they are. */
function selfCommand(): string {
  const script = process.argv[1] ?? 'idem';
  const shown = relative(process.cwd(), script);
  if (script.endsWith('.ts')) return `npx tsx ${shown}`;
  if (/node_modules[\\/]\.bin[\\/]/.test(script) || /[\\/]bin[\\/]idem$/.test(script)) return 'idem';
  return `node ${shown}`;
}
