/**
 * Conformance scenarios for the journal contract across runs: `runs` and its pages, the runs a
 * recovery worker may take over (`dueBy`), and appends racing in one process and across processes
 * (the children run `claim-worker.ts`).
 */
import assert from 'node:assert/strict';
import { ErrorCode } from '../core/errors.js';
import { StoreLimits } from '../core/store.js';
import type { JournalReport } from './claim-worker.js';
import {
  appendInput,
  claimInput,
  HOUR_MS,
  hasCode,
  journal,
  runsAll,
  type ScenarioContext,
  shown,
  utf8,
} from './conformance-inputs.js';
import { startWorker, startWorkers } from './process-scenarios.js';

/**
 * Pages through every run (a record with an entry 0), completed ones included, with any limit;
 * a record without entries, or with entries but no entry 0, is no run.
 */
export async function runPaging(context: ScenarioContext): Promise<void> {
  const store = journal(context.store);
  const t = Date.now();
  const runs = Array.from({ length: 23 }, (_, i) => `run-${String(i).padStart(2, '0')}`);
  for (const key of runs) {
    await store.claim(claimInput(key, { nowMs: t, token: 'a' }));
    await store.append(appendInput(key, 'a', 0, t));
  }
  const result = new Uint8Array([1]);
  for (const key of runs.slice(0, 3)) {
    await store.complete({ key, token: 'a', result, nowMs: t, expiresAtMs: t + HOUR_MS });
  }
  for (let i = 0; i < 3; i++) await store.claim(claimInput(`plain-${i}`, { nowMs: t, token: 'a' }));
  for (let i = 0; i < 2; i++) {
    await store.claim(claimInput(`headless-${i}`, { nowMs: t, token: 'a' }));
    assert.equal(await store.append(appendInput(`headless-${i}`, 'a', 1, t)), true, 'seq 1 without seq 0');
  }

  for (const limit of [1, 7, 10, 23, StoreLimits.maxListLimit]) {
    assert.deepEqual(await runsAll(store, { limit }), runs, `every run, and nothing else, in pages of ${limit}`);
  }
  assert.deepEqual(await runsAll(store), runs, 'the default page size');
  const first = await store.runs({ limit: 5 });
  assert.ok(first.keys.length <= 5);
  assert.ok(
    first.keys.every((key) => runs.includes(key)),
    'the first page holds runs only',
  );
  assert.notEqual(first.nextCursor, undefined, 'more runs follow');
}

/**
 * `limit` is a whole number from 1 to 1000 (`INVALID_OPTIONS` otherwise, with or without
 * `dueBy`), and a page holds at most 100 keys when it is not given.
 */
export async function runLimits(context: ScenarioContext): Promise<void> {
  const store = journal(context.store);
  for (const limit of [0, -1, 1.5, Number.NaN, StoreLimits.maxListLimit + 1]) {
    await assert.rejects(store.runs({ limit }), hasCode(ErrorCode.INVALID_OPTIONS), `limit ${limit}`);
    await assert.rejects(store.runs({ limit, dueBy: 0 }), hasCode(ErrorCode.INVALID_OPTIONS), `limit ${limit}, dueBy`);
  }
  const t = Date.now();
  const count = StoreLimits.defaultListLimit + 1;
  const keys = Array.from({ length: count }, (_, i) => `run-${String(i).padStart(3, '0')}`);
  await Promise.all(
    keys.map(async (key) => {
      await store.claim(claimInput(key, { nowMs: t, token: 'a' }));
      await store.append(appendInput(key, 'a', 0, t));
    }),
  );
  const first = await store.runs();
  assert.ok(first.keys.length <= StoreLimits.defaultListLimit, `a default page held ${first.keys.length} keys`);
  assert.notEqual(first.nextCursor, undefined, `${count} runs do not fit on a default page`);
  assert.deepEqual(await runsAll(store, { limit: StoreLimits.maxListLimit }), keys);
}

/**
 * With `dueBy`, only in-progress runs whose lease ended by then (`leaseExpiresAtMs <= dueBy`) and
 * whose retention did not (`expiresAtMs > dueBy`): not a live lease, a completed run, an expired
 * one, nor a record that is no run. A takeover or an extension makes a due run not due again.
 */
export async function dueRuns(context: ScenarioContext): Promise<void> {
  const store = journal(context.store);
  const t = Date.now();
  const dueBy = t + 10_000;
  const records: [string, { leaseMs: number; expiresAtMs?: number; run?: false }][] = [
    ['due-lease-ended', { leaseMs: 5000 }],
    ['due-lease-ends-at-dueBy', { leaseMs: 10_000 }],
    ['due-expires-after-dueBy', { leaseMs: 1000, expiresAtMs: dueBy + 1 }],
    ['live-lease', { leaseMs: 10_001 }],
    ['expired-at-dueBy', { leaseMs: 1000, expiresAtMs: dueBy }],
    ['completed', { leaseMs: 1000 }],
    ['no-run', { leaseMs: 1000, run: false }],
  ];
  for (const [key, { leaseMs, expiresAtMs, run }] of records) {
    await store.claim(claimInput(key, { nowMs: t, token: 'a', leaseMs, ...(expiresAtMs ? { expiresAtMs } : {}) }));
    if (run !== false) assert.equal(await store.append(appendInput(key, 'a', 0, t)), true);
  }
  const result = new Uint8Array([1]);
  await store.complete({ key: 'completed', token: 'a', result, nowMs: t, expiresAtMs: t + HOUR_MS });

  const due = ['due-expires-after-dueBy', 'due-lease-ended', 'due-lease-ends-at-dueBy'];
  assert.deepEqual(await runsAll(store, { dueBy }), due);
  assert.deepEqual(await runsAll(store, { dueBy, limit: 1 }), due, 'in pages of 1');
  assert.deepEqual(await runsAll(store, { dueBy: t + 999 }), [], 'no lease has ended yet');

  // A recovery worker takes one over; another holder's heartbeat moves its lease: neither is due now.
  const takeover = await store.claim(claimInput('due-lease-ended', { nowMs: dueBy, token: 'b', leaseMs: 30_000 }));
  assert.equal(takeover.claimed, true);
  const extension = { key: 'due-lease-ends-at-dueBy', token: 'a', nowMs: t + 1, expiresAtMs: t + HOUR_MS };
  assert.equal(await store.extend({ ...extension, leaseExpiresAtMs: dueBy + 1 }), true);
  assert.deepEqual(await runsAll(store, { dueBy }), ['due-expires-after-dueBy']);
}

/**
 * Many appends of one `seq` under the same token at once: exactly one is written. Runs appended
 * to at the same time, each by its own holder, keep their own entries.
 */
export async function concurrentAppends({ store: base, counts }: ScenarioContext): Promise<void> {
  const store = journal(base);
  const t = Date.now();
  await store.claim(claimInput('hot', { nowMs: t, token: 'a' }));
  await store.append(appendInput('hot', 'a', 0, t));
  const written = await Promise.all(
    Array.from({ length: counts.concurrentClaims }, (_, i) =>
      store.append(appendInput('hot', 'a', 1, t + 1, utf8(`caller-${i}`))),
    ),
  );
  const winners = written.flatMap((won, i) => (won ? [i] : []));
  assert.equal(winners.length, 1, `${winners.length} of ${counts.concurrentClaims} appends of seq 1 were written`);
  assert.deepEqual(shown(await store.entries('hot')), [`0@${t}:hot:0`, `1@${t + 1}:caller-${winners[0]}`]);

  const runs = Array.from({ length: 10 }, (_, i) => `run-${i}`);
  const steps = Array.from({ length: 20 }, (_, i) => i + 1);
  for (const key of runs) {
    await store.claim(claimInput(key, { nowMs: t, token: `t-${key}` }));
    await store.append(appendInput(key, `t-${key}`, 0, t));
  }
  const appended = await Promise.all(
    steps.flatMap((seq) => runs.map((key) => store.append(appendInput(key, `t-${key}`, seq, t + seq)))),
  );
  assert.ok(
    appended.every((ok) => ok),
    'every append to a run of its own is written',
  );
  for (const key of runs) {
    const expected = [0, ...steps].map((seq) => `${seq}@${t + seq}:${key}:${seq}`);
    assert.deepEqual(shown(await store.entries(key)), expected, `${key} holds its own entries, in order`);
  }
}

/**
 * `processes` children each append `claimsPerProcess` entries to a run of their own, all at once,
 * and race with each other for every seq of one shared run, under its one token: each run holds
 * exactly its entries, and each seq of the shared run was written by exactly one process.
 */
export async function journalsAcrossProcesses({ store: base, job, counts }: ScenarioContext): Promise<void> {
  const store = journal(base);
  const { processes, claimsPerProcess: entries } = counts;
  const nowMs = Date.now();
  const token = 'shared-token';
  await store.claim(claimInput('shared', { nowMs, token }));
  assert.equal(await store.append(appendInput('shared', token, 0, nowMs, utf8('parent'))), true);
  const owners = Array.from({ length: processes }, (_, i) => `own-${i}`);
  const children = await startWorkers(
    owners.map(
      (own) => () =>
        startWorker({ ...job, mode: 'journal', keys: [own, 'shared'], nowMs, leaseMs: 30_000, token, entries }),
    ),
  );
  for (const child of children) child.process.stdin?.write('go\n');
  const reports = (await Promise.all(children.map((c) => c.nextLine()))).map(
    (line) => JSON.parse(line) as JournalReport,
  );
  await Promise.all(children.map((c) => c.exited));

  const seqs = Array.from({ length: entries }, (_, seq) => seq);
  for (const [i, own] of owners.entries()) {
    assert.deepEqual(reports[i]?.refused, [], `${own}: every append to its own run was written`);
    const expected = seqs.map((seq) => `${seq}@${nowMs + seq}:${own}:${seq}`);
    assert.deepEqual(shown(await store.entries(own)), expected, `${own} holds its own entries, in order`);
  }
  const shared = await store.entries('shared');
  assert.deepEqual(
    shared.map((entry) => entry.seq),
    seqs,
  );
  for (const seq of seqs.slice(1)) {
    const winners = owners.filter((_, i) => reports[i]?.won.includes(seq));
    assert.equal(winners.length, 1, `seq ${seq} of the shared run was written by ${winners.length} processes`);
    assert.equal(Buffer.from(shared[seq]?.data ?? []).toString(), `${winners[0]}:${seq}`, `seq ${seq} by its winner`);
  }
  assert.deepEqual(await runsAll(store), [...owners, 'shared'].sort());
}
