// A backfill that grants 10,000 users a welcome credit, interrupted part way (as a deploy or a
// crash would), run again to finish, and run a third time for nothing. One user's credit fails
// until the ledger is fixed: it is retried, reported, and granted by the run after the fix. The
// records are in the embedded SQLite store; the "ledger" is a Map keyed by the item's stable
// idempotency key, as a real ledger table would be (INSERT ... ON CONFLICT DO NOTHING).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BackfillContext, backfill } from '../src/backfill/index.js';
import { SqliteStore } from '../src/stores/sqlite/index.js';

const dir = mkdtempSync(join(tmpdir(), 'idem-backfill-'));
const store = new SqliteStore({ path: join(dir, 'idem.db') });

const users = Array.from({ length: 10_000 }, (_, i) => ({ id: `user-${i}`, email: `u${i}@example.com` }));
const ledger = new Map<string, { user: string; cents: number }>();
let ledgerBroken = true;
let calls = 0;

async function grantWelcomeCredit(user: { id: string }, { idempotencyKey }: BackfillContext): Promise<void> {
  calls++;
  if (ledgerBroken && user.id === 'user-4242') throw new Error('ledger refused user-4242');
  if (!ledger.has(idempotencyKey)) ledger.set(idempotencyKey, { user: user.id, cents: 500 });
}

const job = {
  name: 'welcome-credit-2026',
  items: users,
  key: (user: { id: string }) => user.id,
  handler: grantWelcomeCredit,
  store,
  retryDelayMs: 10,
};

// Run 1: stopped after some 2,000 items, as a deploy would stop it.
const stop = new AbortController();
const first = await backfill({
  ...job,
  signal: stop.signal,
  onProgress: (p) => {
    if (p.settled >= 2000) stop.abort();
  },
  progressIntervalMs: 5,
});
console.log(
  `run 1: ${first.done} done, ${first.failed.length} failed, stopped: ${first.stopped}` +
    (first.failed.length > 0
      ? ` (${first.failed.map((f) => `${f.key}: ${(f.error as Error).message}`).join('; ')})`
      : ''),
);

// Run 2: goes on from there; user-4242 still fails, after 3 attempts, and is listed.
const second = await backfill(job);
console.log(
  `run 2: ${second.done} done, ${second.skipped} skipped, failed: ${second.failed.map((f) => f.key).join(', ')}`,
);

// Run 3, after the fix: only user-4242 is processed.
ledgerBroken = false;
const third = await backfill(job);
console.log(`run 3: ${third.done} done, ${third.skipped} skipped, ${third.failed.length} failed`);

const credited = new Set([...ledger.values()].map((entry) => entry.user));
console.log(`ledger: ${ledger.size} credits for ${credited.size} users; handler calls: ${calls}`);
await store.close();
rmSync(dir, { recursive: true, force: true });
if (ledger.size !== users.length || credited.size !== users.length || third.failed.length > 0) process.exit(1);
