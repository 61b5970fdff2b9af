// An order is paid and its "orders.paid" event is written in the same SQLite transaction, so the
// event exists if and only if the payment committed: a payment that fails leaves no event behind.
// A relay pass then hands the events to a publisher (here one that fails once, then records), which
// retries with backoff; the ids stay the same across attempts, for consumers' inboxes. No server:
// one SQLite file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type PendingMessage, type PublishResult, sqliteOutbox } from '../src/messaging/index.js';

const dir = mkdtempSync(join(tmpdir(), 'idem-outbox-example-'));
const db = new Database(join(dir, 'shop.db'), { timeout: 5000 });
db.pragma('journal_mode = WAL');
db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, state TEXT NOT NULL)');
db.prepare('INSERT INTO orders (id, state) VALUES (?, ?), (?, ?)').run(41, 'new', 42, 'new');

const outbox = sqliteOutbox(db, { table: 'outbox' });

// better-sqlite3's transaction function cannot await: enqueueSync writes the event inside it.
const pay = db.transaction((orderId: number, cardDeclined: boolean) => {
  db.prepare('UPDATE orders SET state = ? WHERE id = ?').run('paid', orderId);
  outbox.enqueueSync(db, {
    topic: 'orders.paid',
    id: `order-${orderId}-paid`,
    key: `order-${orderId}`,
    payload: { orderId },
  });
  if (cardDeclined) throw new Error(`card declined for order ${orderId}`);
});

pay(42, false);
try {
  pay(41, true);
} catch (error) {
  console.log(`payment failed: ${(error as Error).message}; its event was rolled back with it`);
}
console.log('pending after the payments:', await outbox.counts());

// The broker is down for the first attempt, then accepts.
const delivered: string[] = [];
let brokerUp = false;
async function publish(messages: readonly PendingMessage[]): Promise<PublishResult[]> {
  return messages.map((message) => {
    if (!brokerUp) return { ok: false, error: 'connection refused' };
    delivered.push(`${message.id} (attempt ${message.attempts + 1}): ${Buffer.from(message.payload).toString()}`);
    return { ok: true };
  });
}
const backoffMs = (attempts: number) => 1000 * 2 ** (attempts - 1);
const startMs = Date.now();
const relay = (nowMs: number) =>
  outbox.relay({
    limit: 100,
    nowMs,
    publish,
    retryAtMs: (_message, attempts) => (attempts < 5 ? nowMs + backoffMs(attempts) : undefined),
  });

console.log('first pass:', await relay(startMs));
brokerUp = true;
console.log('a pass before the retry is due:', await relay(startMs + 500));
console.log('a pass once it is due:', await relay(startMs + 1000));
console.log('delivered:', delivered);

// Published rows are kept for a while (the outbox remembers their ids), then cleaned up.
console.log('cleaned up:', await outbox.cleanup(startMs + 2000), 'published message(s)');
console.log('in the end:', await outbox.counts());

await outbox.close();
db.close();
rmSync(dir, { recursive: true, force: true });
if (delivered.length !== 1 || !delivered[0]?.startsWith('order-42-paid (attempt 2)')) {
  throw new Error('expected order 42 paid to be delivered once, on its second attempt');
}
