// A payment that a flaky client sends again and again (sequential retries after timeouts, and
// concurrent duplicates from a double click) runs exactly once: on the embedded SQLite store,
// with no server. Run it with `npm run example`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { idempotent, isIdempotencyError } from '../src/core/index.js';
import { SqliteStore } from '../src/stores/sqlite/index.js';

const dir = mkdtempSync(join(tmpdir(), 'idem-example-'));
const store = new SqliteStore({ path: join(dir, 'idem.db') });

const ledger: { orderId: string; amountCents: number }[] = [];
async function chargeCard(order: { orderId: string; amountCents: number }) {
  await new Promise((resolve) => setTimeout(resolve, 50)); // the card network is slow
  ledger.push(order);
  return { chargeId: `ch_${ledger.length}`, amountCents: order.amountCents };
}

const charge = idempotent(chargeCard, {
  store,
  key: (order) => order.orderId,
  onInProgress: 'wait', // a duplicate that arrives mid-charge waits for the first and gets its result
});

const order = { orderId: 'order-1042', amountCents: 2599 };
const results = await Promise.all([charge(order), charge(order), charge(order)]); // a triple click
for (let retry = 0; retry < 5; retry++) results.push(await charge(order)); // five retries later

try {
  await charge({ orderId: 'order-1042', amountCents: 9999 }); // a bug reuses the key for another amount
} catch (error) {
  if (!isIdempotencyError(error, 'FINGERPRINT_MISMATCH')) throw error;
  console.log('reused key with another amount  -> refused (FINGERPRINT_MISMATCH)');
}

console.log(`calls made                      -> ${results.length + 1}`);
console.log(`cards charged                   -> ${ledger.length}`);
console.log(`charge ids the callers received -> ${[...new Set(results.map((r) => r.chargeId))].join(', ')}`);
await store.close();
rmSync(dir, { recursive: true, force: true });
if (ledger.length !== 1) {
  console.error('expected exactly one charge');
  process.exit(1);
}
