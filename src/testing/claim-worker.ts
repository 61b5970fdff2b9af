/**
 * A child process for the conformance suite's multi-process scenarios. It builds the store from
 * the factory module, says `ready`, waits for `go` on stdin so every process starts together, then:
 * - `race`: claims every key at once and prints `{"won": [...], "seen": {key: token}}`;
 * - `hold`: claims one key, prints `claimed <token>` and waits to be killed with SIGKILL;
 * - `journal`: claims its own run (the first key), appends `entries` entries to it, and races for
 *   every seq but 0 of a shared run (the second key) under `token`, all at once; prints a `JournalReport`.
 */
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { JournalStore } from '../core/journal.js';
import type { Store } from '../core/store.js';

export interface WorkerJob {
  factoryModule: string;
  createExport: string;
  namespace: string;
  mode: 'race' | 'hold' | 'journal';
  keys: string[];
  nowMs: number;
  leaseMs: number;
  /** `journal`: the token the shared run is held with. */
  token?: string;
  /** `journal`: entries appended to each run, seq 0 to `entries - 1`. */
  entries?: number;
}

/** What a `journal` worker prints: the seqs of the shared run it wrote, and those of its own run refused. */
export interface JournalReport {
  won: number[];
  refused: number[];
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
  if (job.mode === 'journal') {
    process.stdout.write(`${JSON.stringify(await appendJournals(store as JournalStore, job))}\n`);
    await store.close();
    lines.close();
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

/** Appends to its own run and races for the shared one's seqs, all at once, entry `seq` at `nowMs + seq`. */
async function appendJournals(store: JournalStore, job: WorkerJob): Promise<JournalReport> {
  const [own, shared] = job.keys;
  if (own === undefined || shared === undefined || job.token === undefined || job.entries === undefined) {
    throw new Error('journal needs two keys, a token and a number of entries');
  }
  const token = randomUUID();
  const claim = { key: own, fingerprint: 'fp', token, nowMs: job.nowMs };
  await store.claim({ ...claim, leaseExpiresAtMs: job.nowMs + job.leaseMs, expiresAtMs: job.nowMs + 3_600_000 });
  const entry = (seq: number) => ({ seq, data: new TextEncoder().encode(`${own}:${seq}`), nowMs: job.nowMs + seq });
  const report: JournalReport = { won: [], refused: [] };
  // Seq 0 starts a journal afresh (it removes every entry before it): it goes first, alone.
  if (!(await store.append({ key: own, token, ...entry(0) }))) report.refused.push(0);
  const seqs = Array.from({ length: job.entries - 1 }, (_, i) => i + 1);
  const shareToken = job.token;
  await Promise.all(
    seqs.flatMap((seq) => [
      store.append({ key: own, token, ...entry(seq) }).then((ok) => ok || report.refused.push(seq)),
      store.append({ key: shared, token: shareToken, ...entry(seq) }).then((ok) => ok && report.won.push(seq)),
    ]),
  );
  return report;
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
