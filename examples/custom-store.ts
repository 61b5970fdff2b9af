// A store of your own: examples/custom-store/kv-store.ts keeps Idem's records in a remote
// key-value service (faked here by a Map behind async calls, in examples/custom-store/fake-kv.ts),
// written only against `idem` and `idem/store-kit`. This script runs idempotent() on it, then
// shows what the kit's wrapper does with the service's failures. test/stores/custom-store.test.ts
// runs the conformance suite from `idem/testing` on the same store.
// Run it with `npx tsx examples/custom-store.ts`.
import { idempotent, isIdempotencyError } from '../src/core/index.js';
import { FakeKvServer } from './custom-store/fake-kv.js';
import { KvStore } from './custom-store/kv-store.js';

const server = new FakeKvServer('billing', 's3cret');
const store = new KvStore({ url: 'kv://s3cret@billing' });

let sent = 0;
const sendInvoice = idempotent(
  async (invoice: { id: string; totalCents: number }) => {
    sent += 1;
    await new Promise((resolve) => setTimeout(resolve, 20)); // the mail service is slow
    return { messageId: `msg_${sent}`, invoiceId: invoice.id };
  },
  { store, name: 'send-invoice', key: (invoice) => invoice.id, onInProgress: 'wait' },
);

const invoice = { id: 'inv-2024-0042', totalCents: 12_900 };
const results = await Promise.all([sendInvoice(invoice), sendInvoice(invoice), sendInvoice(invoice)]);
results.push(await sendInvoice(invoice), await sendInvoice(invoice));
const messageIds = [...new Set(results.map((result) => result.messageId))];
console.log(
  `5 calls, 3 at once  -> invoice sent ${sent} time${sent === 1 ? '' : 's'}; message ids the callers got: ${messageIds.join(', ')}`,
);

/** The Idem error `work` fails with, printed. */
async function failure(label: string, work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
    console.log(`${label.padEnd(19)} -> no error`);
    return 'none';
  } catch (error) {
    if (!isIdempotencyError(error)) throw error;
    console.log(`${label.padEnd(19)} -> ${error.code}: ${error.message}`);
    return error.code;
  }
}

// The service goes down: the kit's wrapper maps its error to STORE_UNAVAILABLE, and nothing runs.
server.down = true;
const whenDown = await failure('service down', () => sendInvoice({ id: 'inv-2024-0043', totalCents: 500 }));
server.down = false;

// A wrong token is a configuration mistake, not an outage: retrying will not help.
const misconfigured = new KvStore({ url: 'kv://wrong@billing' });
const wrongToken = await failure('wrong token', () => misconfigured.ping());
await misconfigured.close();

await store.close();
const afterClose = await failure('used after close()', () => sendInvoice(invoice));

const expected = [1, 1, 'STORE_UNAVAILABLE', 'STORE_MISCONFIGURED', 'STORE_CLOSED'];
const got = [sent, messageIds.length, whenDown, wrongToken, afterClose];
if (got.some((value, i) => value !== expected[i])) {
  console.error(`expected ${expected.join(', ')}; got ${got.join(', ')}`);
  process.exitCode = 1;
}
