// `idem serve` in front of an API that is not idempotent: a small orders API that creates an
// order on every POST, the gateway started with examples/idem-serve.json, and one order posted
// twice with the same key. The gateway's binary is dist/cli/main.js: run `npm run build` first.
// Run it with `npx tsx examples/gateway.ts` (npm run examples runs it in CI).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

let created = 0;
const api = createServer((_req, res) => {
  created++;
  res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id: `ord_${created}` }));
});
api.listen(0, '127.0.0.1');
await once(api, 'listening');
const apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;

// The settings come from the config file; flags win over it: here the upstream, a free port,
// and a store in a temporary directory instead of ./idem.db.
const dir = mkdtempSync(join(tmpdir(), 'idem-gateway-example-'));
const gateway = spawn(
  process.execPath,
  [
    fileURLToPath(new URL('../dist/cli/main.js', import.meta.url)),
    'serve',
    '--config',
    fileURLToPath(new URL('./idem-serve.json', import.meta.url)),
    '--upstream',
    apiUrl,
    '--port',
    '0',
    '--store',
    `sqlite:${join(dir, 'idem.db')}`,
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const exited = once(gateway, 'exit');
let url: string | undefined;
for await (const line of createInterface({ input: gateway.stdout })) {
  console.log(`  ${line}`);
  url = /listening on (http:\/\/\S+)/.exec(line)?.[1];
  if (url !== undefined) break;
}
if (url === undefined) throw new Error('the gateway exited before it listened');

async function order(): Promise<string> {
  const response = await fetch(`${url}/orders`, {
    method: 'POST',
    headers: { 'idempotency-key': '"order-7"', authorization: 'Bearer shop-1', 'content-type': 'application/json' },
    body: JSON.stringify({ item: 'book', quantity: 1 }),
  });
  const replayed = response.headers.get('idempotent-replayed') === 'true' ? ' (replayed)' : '';
  return `${response.status} ${await response.text()}${replayed}`;
}
const first = await order();
const retry = await order();
console.log(`first POST  -> ${first}`);
console.log(`the retry   -> ${retry}`);
console.log(`orders made -> ${created}`);

gateway.kill('SIGTERM'); // drains requests in flight, closes the store, exits 0
const [code] = await exited;
api.close();
rmSync(dir, { recursive: true, force: true });
if (created !== 1 || first !== retry.replace(' (replayed)', '') || code !== 0) {
  console.error(`expected one order, the same answer twice and exit code 0 (got ${code})`);
  process.exit(1);
}
