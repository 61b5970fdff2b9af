#!/usr/bin/env node
// Runs the whole test suite with Node's own runner: every test/**/*.test.ts file, TypeScript
// through tsx. Checks first that the servers the suite needs answer, and says how to start them.
// Usage: npm test [-- <file or folder filter>...]
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const services = [
  { name: 'PostgreSQL', port: 5432, env: 'IDEM_POSTGRES_URL' },
  { name: 'Redis', port: 6379, env: 'IDEM_REDIS_URL' },
  { name: 'MariaDB/MySQL', port: 3306, env: 'IDEM_MYSQL_URL' },
  { name: 'dynalite (DynamoDB)', port: 4567, env: 'IDEM_DYNAMODB_URL' },
];

function reachable(port) {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => resolve(socket.end() && true));
    socket.once('timeout', () => resolve(socket.destroy() && false));
    socket.once('error', () => resolve(false));
  });
}

const down = [];
for (const service of services) {
  if (!process.env[service.env] && !(await reachable(service.port))) down.push(service);
}
if (down.length > 0) {
  for (const s of down) console.error(`[idem] ${s.name} does not answer on 127.0.0.1:${s.port}.`);
  console.error(
    '[idem] The suite runs against real servers: start them (bash .ci/services starts all of them), or point the IDEM_*_URL variables at yours.',
  );
  process.exit(2);
}

// The Redis Cluster that .ci/services starts; without it the store suite's Cluster run is skipped, saying why.
if (!process.env.IDEM_REDIS_CLUSTER && (await reachable(7101))) process.env.IDEM_REDIS_CLUSTER = '127.0.0.1:7101';

function testFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'fixtures' ? [] : testFiles(path);
    return name.endsWith('.test.ts') ? [path] : [];
  });
}

const filters = process.argv.slice(2);
const files = testFiles(join(root, 'test'))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((filter) => f.includes(filter)))
  .sort();
if (files.length === 0) {
  console.error(`[idem] no test file matches ${filters.join(' ')}`);
  process.exit(2);
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
const tap = existsSync(tapFile) ? readFileSync(tapFile, 'utf8') : '';
rmSync(tapFile, { force: true });
const count = (name) => Number(tap.match(new RegExp(`^# ${name} (\\d+)$`, 'm'))?.[1] ?? 0);
console.log(
  `tests: ${count('pass')} passed, ${count('fail') + count('cancelled')} failed, ${count('skipped')} skipped`,
);
process.exit(result.status ?? 1);
