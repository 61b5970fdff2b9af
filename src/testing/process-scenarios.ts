/**
 * The conformance scenarios that need other processes: claims racing across processes, and a
 * holder killed mid-lease. The children run `claim-worker.ts`; `startWorker` starts one for the
 * journal scenarios too.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { WorkerJob } from './claim-worker.js';
import { claimInput, HOUR_MS, type ScenarioContext } from './conformance-inputs.js';

const workerUrl = new URL(`./claim-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

export interface Worker {
  process: ChildProcess;
  nextLine(): Promise<string>;
  exited: Promise<number | null>;
}

/**
 * Spawns `script` with this process's loader flags and `args`, and resolves once it prints
 * `ready`: the claim and outbox workers, and any test's child that answers line by line. `label`
 * names it in the errors.
 */
export async function startLineProcess(script: URL, args: string[], label = 'worker'): Promise<Worker> {
  const child = spawn(process.execPath, [...process.execArgv, script.pathname, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  const nextLine = async (): Promise<string> => {
    const next = await Promise.race([lines.next(), exited.then(() => null)]);
    if (next === null || next.done) throw new Error(`${label} exited early: ${stderr || '(no output)'}`);
    return next.value;
  };
  const first = await nextLine();
  if (first !== 'ready') throw new Error(`${label} said ${first} instead of ready: ${stderr}`);
  return { process: child, nextLine, exited };
}

/** Spawns a claim worker and resolves once it says `ready`. */
export function startWorker(job: WorkerJob): Promise<Worker> {
  return startLineProcess(workerUrl, [JSON.stringify(job)]);
}

/**
 * Starts every worker at once and resolves when all said `ready`. When one fails to start, the
 * others are killed before the error is thrown: left waiting for `go`, they would hold the test
 * run open for ever.
 */
export async function startWorkers<W extends { process: ChildProcess }>(starts: (() => Promise<W>)[]): Promise<W[]> {
  const settled = await Promise.allSettled(starts.map((start) => start()));
  const failed = settled.find((result) => result.status === 'rejected');
  if (failed === undefined) return settled.map((result) => (result as PromiseFulfilledResult<W>).value);
  for (const result of settled) if (result.status === 'fulfilled') result.value.process.kill('SIGKILL');
  throw failed.reason;
}

/** `processes` children claim the same `perProcess` keys at once: each key has exactly one winner, and all see its token. */
export async function raceAcrossProcesses({ store, job: base, counts }: ScenarioContext): Promise<void> {
  const { processes, claimsPerProcess: perProcess } = counts;
  const keys = Array.from({ length: perProcess }, (_, i) => `race-${i}`);
  const nowMs = Date.now();
  const children = await startWorkers(
    Array.from({ length: processes }, () => () => startWorker({ ...base, mode: 'race', keys, nowMs, leaseMs: 30_000 })),
  );
  for (const child of children) child.process.stdin?.write('go\n');
  const reports = (await Promise.all(children.map((c) => c.nextLine()))).map(
    (line) => JSON.parse(line) as { won: string[]; seen: Record<string, string> },
  );
  await Promise.all(children.map((c) => c.exited));
  for (const key of keys) {
    const winners = reports.filter((r) => r.won.includes(key)).length;
    assert.equal(winners, 1, `${key} had ${winners} winners`);
    const record = await store.get(key);
    for (const report of reports) assert.equal(report.seen[key], record?.token, `${key} token seen by every process`);
  }
}

/** A child claims a key with a 2 s lease and is killed: the key stays blocked until the lease ends, then one caller takes over. */
export async function killHolderMidLease({ store, job: base }: ScenarioContext): Promise<void> {
  const nowMs = Date.now();
  const child = await startWorker({
    ...base,
    mode: 'hold',
    keys: ['held'],
    nowMs,
    leaseMs: 2000,
  });
  child.process.stdin?.write('go\n');
  const line = await child.nextLine();
  assert.match(line, /^claimed /);
  const heldToken = line.slice('claimed '.length);
  child.process.kill('SIGKILL');
  await child.exited;
  const blocked = await store.claim(claimInput('held', { nowMs: nowMs + 1999, token: 'next' }));
  assert.equal(blocked.claimed, false);
  assert.equal(blocked.record.token, heldToken);
  const takeover = await store.claim(claimInput('held', { nowMs: nowMs + 2000, token: 'next' }));
  assert.equal(takeover.claimed, true);
  assert.equal(takeover.record.attempts, 2);
  assert.equal(
    await store.complete({
      key: 'held',
      token: heldToken,
      result: new Uint8Array([1]),
      nowMs: nowMs + 2001,
      expiresAtMs: nowMs + HOUR_MS,
    }),
    false,
  );
}
