// An order workflow (charge the card, reserve stock, send the receipt) whose process is killed
// with SIGKILL right after the card was charged, before the charge was recorded. A recovery worker
// resumes the run from its journal: the charge step runs again, with the same derived key, so the
// payment provider (a small server here that honours Idempotency-Key) charges once; the steps
// recorded before the kill do not run again. On the embedded SQLite store: no server needed.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../src/stores/sqlite/index.js';
import { Workflows } from '../src/workflow/index.js';

interface Order {
  orderId: string;
  cents: number;
  provider: string;
}

/** The workflows both processes define: the child starts the run, the parent's worker resumes it. */
function defineOrder(workflows: Workflows, killAfterCharge: boolean) {
  return workflows.define('order', async (ctx, order: Order) => {
    const created = await ctx.step('create order', () => ({ orderId: order.orderId, at: 'created' }));
    const charge = await ctx.step('charge card', async (step) => {
      const response = await fetch(`${order.provider}/charges`, {
        method: 'POST',
        headers: { 'idempotency-key': step.key, 'content-type': 'application/json' },
        body: JSON.stringify({ cents: order.cents }),
      });
      const charged = (await response.json()) as { chargeId: string };
      if (killAfterCharge) process.kill(process.pid, 'SIGKILL'); // the worst moment: charged, not recorded
      return charged;
    });
    await ctx.step('send receipt', () => `receipt for ${created.orderId}, ${charge.chargeId}`);
    return charge.chargeId;
  });
}

const [role, path, provider] = process.argv.slice(2);
const settings = { leaseMs: 1000, heartbeatMs: 300 };

if (role === 'child') {
  const workflows = new Workflows({ store: new SqliteStore({ path: path as string }), ...settings });
  await defineOrder(workflows, true).run('order-1042', { orderId: '1042', cents: 2599, provider: provider as string });
} else {
  // The payment provider: one charge per Idempotency-Key, the same answer to a repeated key.
  const charges = new Map<string, string>();
  let calls = 0;
  const server = createServer((request, response) => {
    calls += 1;
    const key = String(request.headers['idempotency-key']);
    if (!charges.has(key)) charges.set(key, `ch_${charges.size + 1}`);
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify({ chargeId: charges.get(key) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const providerUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dir = mkdtempSync(join(tmpdir(), 'idem-workflow-'));
  const dbPath = join(dir, 'idem.db');

  const child = spawn(process.execPath, ['--import', 'tsx', process.argv[1] as string, 'child', dbPath, providerUrl], {
    stdio: 'inherit',
  });
  const signal = await new Promise((resolve) => child.once('exit', (_code, sig) => resolve(sig)));
  console.log(`the process running order-1042 died: ${String(signal)}, after ${calls} call to the provider`);

  const store = new SqliteStore({ path: dbPath });
  const workflows = new Workflows({ store, ...settings });
  defineOrder(workflows, false);
  const worker = workflows.worker({ pollMs: 100 }).start();
  const chargeId = await workflows.handle<string>('order-1042').result();
  await worker.stop();
  const view = await workflows.status('order-1042');
  console.log(`resumed by a worker: ${view.state}, ${chargeId}, ${view.attempts} attempts`);
  for (const step of view.steps)
    console.log(`  ${step.position} ${step.name}: ${step.state}, ${step.attempts} attempt(s)`);
  console.log(`provider: ${calls} calls, ${charges.size} charge (the repeated call carried the same key)`);
  await store.close();
  server.close();
  rmSync(dir, { recursive: true, force: true });
  if (charges.size !== 1 || chargeId !== 'ch_1' || view.state !== 'completed') {
    console.error('expected one charge and a completed run');
    process.exit(1);
  }
}
