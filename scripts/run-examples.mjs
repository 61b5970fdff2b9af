#!/usr/bin/env node
// Runs every example in examples/ (npm run examples; CI runs it after the build, which
// examples/gateway.ts needs): each must exit 0, and each prints what it shows. The stores example
// runs on memory, SQLite and each server store that answers (IDEM_POSTGRES_URL, IDEM_REDIS_URL,
// IDEM_MYSQL_URL, or the test suite's loopback servers); one that does not is skipped, saying so,
// as is the DynamoDB Lambda example without dynalite (IDEM_DYNAMODB_URL, or 127.0.0.1:4567), the
// BullMQ example without Redis, and the RabbitMQ inbox example without RabbitMQ (IDEM_AMQP_URL,
// or 127.0.0.1:5672).
// The test-runner examples run under their runner: examples/vitest with Vitest, examples/jest with
// Jest in its ESM mode (on the build: dist/).
// A new file in examples/ without a run here fails the script, so no example goes unrun.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const servers = [
  { env: 'IDEM_POSTGRES_URL', url: 'postgres://postgres@127.0.0.1:5432/test' },
  { env: 'IDEM_REDIS_URL', url: 'redis://127.0.0.1:6379' },
  { env: 'IDEM_MYSQL_URL', url: 'mysql://root@127.0.0.1:3306/test' },
];

function reachable(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.setTimeout(1000);
    socket.once('connect', () => resolve(socket.end() && true));
    socket.once('timeout', () => resolve(socket.destroy() && false));
    socket.once('error', () => resolve(false));
  });
}

const runs = [
  ['retry-once.ts'],
  ['check-idempotency.ts'],
  ['express-charges.ts'],
  ['scoped-encrypted.ts'],
  ['gateway.ts'],
  ['custom-store.ts'],
  ['workflow-order.ts'],
  ['notify-once.ts'],
  ['backfill.ts'],
  ['outbox-enqueue.ts'],
  ['agent-ai-sdk.ts'],
  ['agent-openai.ts'],
  ['eslint-plugin.ts'],
  ['stores.ts', 'memory:'],
  ['stores.ts'],
];
for (const server of servers) {
  const url = process.env[server.env] ?? server.url;
  if (await reachable(url)) runs.push(['stores.ts', url]);
  else console.log(`[examples] skipped stores.ts on ${new URL(url).protocol} nothing answers at ${new URL(url).host}`);
}
// The Lambda example runs on DynamoDB: dynalite (.ci/services starts it) or IDEM_DYNAMODB_URL.
const skipped = [];
// The BullMQ example needs Redis for its queue (and keeps the guard's records there too).
const redisUrl = process.env.IDEM_REDIS_URL ?? 'redis://127.0.0.1:6379';
if (await reachable(redisUrl)) runs.push(['jobs-bullmq.ts', redisUrl]);
else {
  skipped.push('jobs-bullmq.ts');
  console.log(`[examples] skipped jobs-bullmq.ts: nothing answers at ${new URL(redisUrl).host}`);
}
const dynamoDbUrl = process.env.IDEM_DYNAMODB_URL ?? 'http://127.0.0.1:4567';
if (await reachable(dynamoDbUrl)) runs.push(['dynamodb-lambda.ts', dynamoDbUrl]);
else {
  skipped.push('dynamodb-lambda.ts');
  console.log(`[examples] skipped dynamodb-lambda.ts: nothing answers at ${new URL(dynamoDbUrl).host}`);
}

// The RabbitMQ inbox example needs RabbitMQ: IDEM_AMQP_URL, or the test suite's loopback server.
const amqpUrl = process.env.IDEM_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
if (await reachable(amqpUrl)) runs.push(['inbox-rabbitmq.ts', amqpUrl]);
else {
  skipped.push('inbox-rabbitmq.ts');
  console.log(`[examples] skipped inbox-rabbitmq.ts: nothing answers at ${new URL(amqpUrl).host}`);
}

const unrun = readdirSync(join(root, 'examples')).filter(
  (name) => name.endsWith('.ts') && !skipped.includes(name) && !runs.some(([file]) => file === name),
);
if (unrun.length > 0) {
  console.error(`[examples] not run by scripts/run-examples.mjs: ${unrun.join(', ')}; add them to its list.`);
  process.exit(1);
}
if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) {
  console.error('[examples] dist/ is missing: run `npm run build` first (examples/gateway.ts runs the built idem).');
  process.exit(2);
}

const bin = (name) => join(root, 'node_modules', '.bin', name);
const commands = [
  ...runs.map(([file, ...args]) => ({
    label: [file, ...args].join(' '),
    argv: ['--import', 'tsx', join('examples', file), ...args],
    timeoutMs: 60_000,
  })),
  // A runner starts slower than one script: it transforms and collects before it runs.
  { label: 'vitest/ (Vitest)', argv: [bin('vitest'), 'run', '--root', 'examples/vitest'], timeoutMs: 180_000 },
  {
    label: 'jest/ (Jest, ESM mode)',
    argv: ['--experimental-vm-modules', bin('jest'), '--config', 'examples/jest/jest.config.cjs'],
    timeoutMs: 180_000,
  },
];
const failed = [];
for (const { label, argv, timeoutMs } of commands) {
  console.log(`\n[examples] ${label}`);
  const started = performance.now();
  const result = spawnSync(process.execPath, argv, { cwd: root, stdio: 'inherit', timeout: timeoutMs });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (result.status === 0) console.log(`[examples] ok in ${seconds} s`);
  else {
    console.error(`[examples] FAILED (${result.error?.message ?? `exit ${result.status ?? result.signal}`})`);
    failed.push(label);
  }
}
if (failed.length > 0) {
  console.error(`\n[examples] ${failed.length} of ${commands.length} failed: ${failed.join('; ')}`);
  process.exit(1);
}
console.log(`\n[examples] all ${commands.length} runs passed`);
