/**
 * `npm run bench`: what Idem costs, measured against the bare operation, the raw driver and the
 * other libraries that do the same job. Prints tables on stdout (progress on stderr) and writes
 * bench/results/latest.json. Measures only: nothing here fails on a number.
 *
 * Options:
 *   --only stores|http|gateway|workflows|notify|agent|messaging|backfill|production|testing|eslint  run one part (default all)
 *   --stores a,b,...       memory, sqlite, postgres, redis, mysql (default all; workflows: sqlite, postgres)
 *   --quick                short runs, for a smoke test
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { type AgentReport, agentSection, benchAgent } from './agent.js';
import { type BackfillReport, backfillSection, benchBackfill } from './backfill.js';
import { benchEslint, type EslintReport, eslintSection } from './eslint.js';
import { benchGateway, type GatewayReport } from './gateway.js';
import { benchHttp, type HttpReport } from './http.js';
import { benchMessaging, type MessagingReport, messagingSection } from './messaging.js';
import { benchNotify, type NotifyReport, notifySection } from './notify.js';
import { benchProduction, type ProductionReport } from './production.js';
import { productionSection } from './production-report.js';
import { gatewaySection, httpSection, storeSection } from './report.js';
import { STORE_NAMES, type StoreName } from './store-targets.js';
import { benchStores, type StoreReport } from './stores.js';
import { benchTesting, type TestingReport, testingSection } from './testing.js';
import { WORKFLOW_DATABASES, type WorkflowDatabaseName } from './workflows/databases.js';
import { workflowSection } from './workflows/report.js';
import { benchWorkflows, type WorkflowReport } from './workflows/workflows.js';

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    stores: { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
  strict: true,
});

const PARTS = [
  'stores',
  'http',
  'gateway',
  'workflows',
  'notify',
  'agent',
  'messaging',
  'backfill',
  'production',
  'testing',
  'eslint',
];
const only = values.only;
if (only !== undefined && !PARTS.includes(only)) {
  console.error(
    `--only takes one of ${PARTS.map((part) => JSON.stringify(part)).join(', ')}; got ${JSON.stringify(only)}`,
  );
  process.exit(2);
}
const stores = (values.stores?.split(',').map((name) => name.trim()) ?? [...STORE_NAMES]).filter(Boolean);
const unknown = stores.filter((name) => !(STORE_NAMES as readonly string[]).includes(name));
if (unknown.length > 0) {
  console.error(`--stores: unknown ${unknown.join(', ')}; choose from ${STORE_NAMES.join(', ')}`);
  process.exit(2);
}
const quick = values.quick === true;
const log = (line: string) => console.error(line);
const started = performance.now();

const results: {
  meta: Record<string, unknown>;
  stores?: StoreReport;
  http?: HttpReport;
  gateway?: GatewayReport;
  workflows?: WorkflowReport;
  notify?: NotifyReport;
  agent?: AgentReport;
  messaging?: MessagingReport;
  backfill?: BackfillReport;
  production?: ProductionReport;
  testing?: TestingReport;
  eslint?: EslintReport;
} = {
  meta: {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    options: { only: only ?? 'all', stores, quick },
    loadAtStart: loadavg().map((value) => Math.round(value * 100) / 100),
  },
};

if (only === undefined || only === 'stores') {
  log(quick ? 'stores (quick)...' : 'stores...');
  results.stores = await benchStores({ stores: stores as StoreName[], quick, log });
}
if (only === undefined || only === 'http') {
  log(quick ? 'http (quick)...' : 'http...');
  results.http = await benchHttp({ stores: stores as StoreName[], quick, log });
}
if (only === undefined || only === 'gateway') {
  log(quick ? 'gateway (quick)...' : 'gateway...');
  results.gateway = await benchGateway({ stores: stores as StoreName[], quick, log });
}
if (only === undefined || only === 'workflows') {
  const databases = WORKFLOW_DATABASES.filter((name) => stores.includes(name)) as WorkflowDatabaseName[];
  if (databases.length === 0) log('workflows: skipped, --stores names neither sqlite nor postgres');
  else {
    log(quick ? 'workflows (quick)...' : 'workflows...');
    results.workflows = await benchWorkflows({ databases, quick, log });
  }
}
if (only === undefined || only === 'notify') {
  log(quick ? 'notify (quick)...' : 'notify...');
  results.notify = await benchNotify({ stores: stores as StoreName[], quick, log });
}
if (only === undefined || only === 'agent') {
  log(quick ? 'agent (quick)...' : 'agent...');
  results.agent = await benchAgent({ stores: stores as StoreName[], quick, log });
}
if (only === undefined || only === 'messaging') {
  log(quick ? 'messaging (quick)...' : 'messaging...');
  results.messaging = await benchMessaging({ stores: stores as StoreName[], quick, log });
}
if (only === undefined || only === 'backfill') {
  log(quick ? 'backfill (quick)...' : 'backfill...');
  results.backfill = await benchBackfill({ stores, quick, log });
}
if (only === undefined || only === 'production') {
  log(quick ? 'production (quick)...' : 'production...');
  results.production = await benchProduction({ stores, quick, log });
}
if (only === undefined || only === 'testing') {
  log(quick ? 'testing (quick)...' : 'testing...');
  results.testing = await benchTesting({ quick, log });
}
if (only === undefined || only === 'eslint') {
  log(quick ? 'eslint (quick)...' : 'eslint...');
  results.eslint = await benchEslint({ quick, log });
}
results.meta.totalSeconds = Math.round((performance.now() - started) / 100) / 10;
results.meta.loadAtEnd = loadavg().map((value) => Math.round(value * 100) / 100);

const sections: string[] = [
  `Idem benchmark, ${results.meta.date}, Node ${process.version}, ${results.meta.cpus} x ${results.meta.cpuModel}${quick ? ', QUICK' : ''}`,
];
if (results.stores) sections.push(storeSection(results.stores));
if (results.http) sections.push(httpSection(results.http));
if (results.gateway) sections.push(gatewaySection(results.gateway));
if (results.workflows) sections.push(workflowSection(results.workflows));
if (results.notify) sections.push(notifySection(results.notify));
if (results.agent) sections.push(agentSection(results.agent));
if (results.messaging) sections.push(messagingSection(results.messaging));
if (results.backfill) sections.push(backfillSection(results.backfill));
if (results.production) sections.push(productionSection(results.production));
if (results.testing) sections.push(testingSection(results.testing));
if (results.eslint) sections.push(eslintSection(results.eslint));
// Other work on the machine skews every figure: say how busy it was.
sections.push(
  `total ${results.meta.totalSeconds} s; load average (1, 5, 15 min) at start ${String(results.meta.loadAtStart)}, at end ${String(results.meta.loadAtEnd)} on ${results.meta.cpus} cores`,
);
console.log(sections.join('\n\n'));

const directory = new URL('./results/', import.meta.url);
mkdirSync(directory, { recursive: true });
writeFileSync(new URL('latest.json', directory), `${JSON.stringify(results, null, 2)}\n`);
console.log(`results: bench/results/latest.json`);
