/**
 * A child process for the conformance suite's multi-process scenarios. It builds the store from
 * the factory module, says `ready`, waits for `go` on stdin so every process starts together, then:
 * - `race`: claims every key at once and prints `{"won": [...], "seen": {key: token}}`;
 * - `hold`: claims one key, prints `claimed <token>` and waits to be killed with SIGKILL.
 */
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Store } from '../core/store.js';

export interface WorkerJob {
  factoryModule: string;
  createExport: string;
  namespace: string;
  mode: 'race' | 'hold';
  keys: string[];
  nowMs: number;
  leaseMs: number;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '') as WorkerJob;
  const factory = (await import(job.factoryModule)) as Record<string, (namespace: string) => Promise<Store>>;
  const create = factory[job.createExport];
  if (typeof create !== 'function') throw new Error(`${job.factoryModule} does not export ${job.createExport}`);
  const store = await create(job.namespace);
  // Open connections and run migrations before the start line, so the race is about claims only.
  await store.get('warm-up');
  const lines = createInterface({ input: process.stdin });
  const iterator = lines[Symbol.asyncIterator]();
  process.stdout.write('ready\n');
  await iterator.next();

  if (job.mode === 'hold') {
    const token = randomUUID();
    const [key] = job.keys;
    if (key === undefined) throw new Error('hold needs one key');
    const outcome = await store.claim({
      key,
      fingerprint: 'fp',
      token,
      nowMs: job.nowMs,
      leaseExpiresAtMs: job.nowMs + job.leaseMs,
      expiresAtMs: job.nowMs + 3_600_000,
    });
    process.stdout.write(outcome.claimed ? `claimed ${token}\n` : 'lost\n');
    setInterval(() => {}, 60_000);
    return;
  }

  const won: string[] = [];
  const seen: Record<string, string> = {};
  await Promise.all(
    job.keys.map(async (key) => {
      const token = randomUUID();
      const outcome = await store.claim({
        key,
        fingerprint: 'fp',
        token,
        nowMs: job.nowMs,
        leaseExpiresAtMs: job.nowMs + job.leaseMs,
        expiresAtMs: job.nowMs + 3_600_000,
      });
      if (outcome.claimed) won.push(key);
      seen[key] = outcome.record.token;
    }),
  );
  process.stdout.write(`${JSON.stringify({ won, seen })}\n`);
  await store.close();
  lines.close();
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
