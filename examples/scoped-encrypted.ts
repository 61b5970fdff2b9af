// Two tenants pick the same key and each gets its own result (keys are scoped); the results are
// sealed at rest with AES-256-GCM and the store holds no raw key; a process with another
// encryption key cannot read them. Run it with `npx tsx examples/scoped-encrypted.ts`.
import { randomBytes, randomUUID } from 'node:crypto';
import { idempotent, isIdempotencyError } from '../src/core/index.js';
import { MemoryStore } from '../src/stores/memory/index.js';

const store = new MemoryStore();
// In production: 32 random bytes from your secret manager, the same on every host.
const encryptionKey = randomBytes(32);

interface Invoice {
  key: string;
  customer: string;
  totalCents: number;
}
async function createInvoice(tenant: string, invoice: Invoice) {
  return { id: randomUUID(), tenant, customer: invoice.customer, totalCents: invoice.totalCents };
}
const options = {
  store,
  name: 'create-invoice',
  scope: (tenant: string) => tenant, // a tenant never sees another tenant's records
  key: (_tenant: string, invoice: Invoice) => invoice.key,
};
const create = idempotent(createInvoice, { ...options, encryptionKey });

const acme = await create('acme', { key: 'inv-1', customer: 'Ada Lovelace', totalCents: 1200 });
const acmeAgain = await create('acme', { key: 'inv-1', customer: 'Ada Lovelace', totalCents: 1200 });
const globex = await create('globex', { key: 'inv-1', customer: 'Grace Hopper', totalCents: 900 });
console.log(`acme, key inv-1, twice      -> ${acme.id === acmeAgain.id ? 'one invoice' : 'two invoices'}`);
console.log(`globex, the same key inv-1  -> ${globex.id === acme.id ? "acme's invoice" : 'its own invoice'}`);

const { records } = await store.list();
const atRest = records.map((record) => `${record.key} ${Buffer.from(record.result ?? []).toString('latin1')}`);
const leaks = ['inv-1', 'acme', 'Ada Lovelace'].filter((text) => atRest.some((bytes) => bytes.includes(text)));
console.log(`at rest, raw key or content -> ${leaks.length === 0 ? 'none' : leaks.join(', ')}`);

const otherKey = idempotent(createInvoice, { ...options, encryptionKey: randomBytes(32) });
let unreadable = false;
try {
  await otherKey('acme', { key: 'inv-1', customer: 'Ada Lovelace', totalCents: 1200 });
} catch (error) {
  unreadable = isIdempotencyError(error, 'RESULT_UNREADABLE');
}
console.log(`read with another key       -> ${unreadable ? 'refused (RESULT_UNREADABLE)' : 'read!'}`);
await store.close();

if (acme.id !== acmeAgain.id || globex.id === acme.id || leaks.length > 0 || !unreadable) process.exit(1);
