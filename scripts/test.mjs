#!/usr/bin/env node
// Runs the test suite with Node's own runner: every test/**/*.test.ts file, TypeScript through
// tsx, or only those whose path contains one of the filters. Checks first that the servers the
// selected files need answer (a unit run needs none), and says how to start those that do not.
// Usage: npm test [-- <file or folder filter>...]
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const testRoot = join(root, 'test');

/**
 * The servers the suite talks to, and which test files need each. A file needs a service when it,
 * or a test module it loads (an import, or a `new URL('./x.ts', import.meta.url)`: the store
 * factories, fixtures run as child processes), mentions the service's variable, as every store
 * factory does; or when its path matches `paths`: a file that builds a factory's path at run time
 * (`${name}.factory.ts`) or that uses the server's address without the variable. The variable,
 * when set, says where the server is (a URL, or host:port); else it is 127.0.0.1:`port`. An
 * `optional` service is looked for only: when it answers, its variable is set to `optional` for
 * the run and the tests that need it run instead of skipping.
 */
const services = [
  { name: 'PostgreSQL', port: 5432, env: 'IDEM_POSTGRES_URL', paths: /^test\/(core\/crash|cli\/errors)\./ },
  { name: 'Redis', port: 6379, env: 'IDEM_REDIS_URL', paths: /^test\/core\/crash\./ },
  { name: 'MariaDB/MySQL', port: 3306, env: 'IDEM_MYSQL_URL' },
  {
    name: 'DynamoDB (dynalite)',
    port: 4567,
    env: 'IDEM_DYNAMODB_URL',
    paths: /^test\/(stores\/dynamodb|lambda\/)/,
    // An npm dev dependency, not a system service: when it is down, the run starts its own.
    start: [
      'node_modules/.bin/dynalite',
      '--host',
      '127.0.0.1',
      '--port',
      '4567',
      '--createTableMs',
      '50',
      '--deleteTableMs',
      '50',
    ],
  },
  { name: 'RabbitMQ', port: 5672, env: 'IDEM_AMQP_URL' },
  { name: 'NATS JetStream', port: 4222, env: 'IDEM_NATS_URL' },
  { name: 'Redis Cluster', port: 7101, env: 'IDEM_REDIS_CLUSTER', optional: '127.0.0.1:7101' },
];

function testFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'fixtures' ? [] : testFiles(path);
    return name.endsWith('.test.ts') ? [path] : [];
  });
}

const filters = process.argv.slice(2);
const files = testFiles(testRoot)
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((filter) => f.includes(filter)))
  .sort();
if (files.length === 0) {
  console.error(`[idem] no test file matches ${filters.join(' ')}`);
  process.exit(2);
}

const localSpecifier = /(?:from|import\(|new URL\()\s*['"](\.{1,2}\/[^'"]+)['"]/g;

/** The text of `file` and of every module under test/ it loads, directly or through another. */
function sourcesOf(file) {
  const seen = new Set();
  const texts = [];
  const visit = (path) => {
    if (seen.has(path)) return;
    seen.add(path);
    const text = readFileSync(path, 'utf8');
    texts.push(text);
    for (const [, specifier] of text.matchAll(localSpecifier)) {
      const target = resolve(dirname(path), specifier);
      const candidate = [target, target.replace(/\.js$/, '.ts')].find((p) => existsSync(p) && statSync(p).isFile());
      if (candidate !== undefined && !relative(testRoot, candidate).startsWith('..')) visit(candidate);
    }
  };
  visit(join(root, file));
  return texts.join('\n');
}

function needs(service, file, text) {
  return service.paths?.test(file) === true || text.includes(service.env);
}

/** Where `service` should answer: its variable's host and port, or loopback and its usual port. */
function addressOf(service) {
  const given = process.env[service.env];
  if (!given) return { host: '127.0.0.1', port: service.port };
  try {
    const url = new URL(given.includes('://') ? given : `tcp://${given}`);
    return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || service.port), from: service.env };
  } catch {
    console.error(`[idem] ${service.env}=${given} is not a URL or host:port; fix it or unset it.`);
    process.exit(2);
  }
}

/** Starts `service.start` for this run and waits up to 20 s for it to answer; false if it does not. */
async function startOwn(service, address) {
  const [command, ...args] = service.start;
  const child = spawn(join(root, command), args, { cwd: root, stdio: 'ignore' });
  child.once('error', () => {});
  started.push(child);
  for (let tries = 0; tries < 80; tries++) {
    if (await reachable(address)) {
      console.log(`[idem] started ${service.name} on ${address.host}:${address.port} for this run`);
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return false;
}

function reachable({ host, port }) {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(1000);
    socket.once('connect', () => resolve(socket.end() && true));
    socket.once('timeout', () => resolve(socket.destroy() && false));
    socket.once('error', () => resolve(false));
  });
}

const sources = files.map((file) => ({ file, text: sourcesOf(file) }));
const needed = services.filter((service) => sources.some(({ file, text }) => needs(service, file, text)));
const down = [];
/** Servers this run started itself (see `start`), ended when the run ends. */
const started = [];
for (const service of needed) {
  const address = addressOf(service);
  let up = await reachable(address);
  if (!up && service.start !== undefined && !address.from) up = await startOwn(service, address);
  if (service.optional !== undefined) {
    if (up && !process.env[service.env]) process.env[service.env] = service.optional;
  } else if (!up) {
    down.push({ service, address, by: sources.filter(({ file, text }) => needs(service, file, text)) });
  }
}
if (down.length > 0) {
  for (const { service, address, by } of down) {
    const names = by.map(({ file }) => file);
    const users = `${names.slice(0, 3).join(', ')}${names.length > 3 ? ` and ${names.length - 3} more` : ''}`;
    const where = address.from
      ? `${address.host}:${address.port}, where ${address.from} points`
      : `${address.host}:${address.port} (set ${service.env} to use another server)`;
    console.error(`[idem] ${service.name} does not answer on ${where}; needed by ${users}.`);
  }
  console.error(
    '[idem] These tests run against real servers: start them with `bash .ci/services` (it starts any that is down), or select other files with npm test -- <filter>.',
  );
  for (const child of started) child.kill();
  process.exit(2);
}
const checked = needed.filter((service) => service.optional === undefined);
if (checked.length > 0) {
  console.log(`[idem] servers the selected files need: ${checked.map((s) => s.name).join(', ')} (all answer)`);
}

// The spec reporter for people; a TAP copy to a file, to print one plain closing line for machines.
const tapFile = join(tmpdir(), `idem-test-${process.pid}.tap`);
const result = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tapFile}`,
    ...files,
  ],
  { cwd: root, stdio: 'inherit' },
);
for (const child of started) child.kill();
const tap = existsSync(tapFile) ? readFileSync(tapFile, 'utf8') : '';
rmSync(tapFile, { force: true });
const count = (name) => Number(tap.match(new RegExp(`^# ${name} (\\d+)$`, 'm'))?.[1] ?? 0);
console.log(
  `tests: ${count('pass')} passed, ${count('fail') + count('cancelled')} failed, ${count('skipped')} skipped`,
);
process.exit(result.status ?? 1);
