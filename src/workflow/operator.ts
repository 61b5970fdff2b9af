/**
 * What operators do with runs (`idem workflows list|show|resume|cancel`): read a run and its
 * steps, page through runs, ask a run to stop, resume a parked one.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode, IdempotencyError } from '../core/errors.js';
import { OutcomeKind } from '../core/outcome.js';
import type { IdempotencyRecord } from '../core/store.js';
import { defaultSerializer } from '../core/value-codec.js';
import { makeDueNow } from './due-now.js';
import { notFound } from './handle.js';
import { cancelKeyOf, runKeyOf } from './keys.js';
import type { RunView } from './types.js';
import { runView } from './view.js';
import type { Workflows } from './workflows.js';

/** A run and its steps, or `undefined` when there is no run with this key. */
export async function readRun(workflows: Workflows, key: string): Promise<RunView | undefined> {
  const { engine, store, entryCodec } = workflows;
  const [record, raw] = await Promise.all([
    engine.call('get', () => store.get(key, engine.now())),
    engine.call('entries', () => store.entries(key)),
  ]);
  if (record === null) return undefined;
  const entries = raw.map((entry) => entryCodec.decode(key, entry));
  if (entries[0]?.entry.t !== 'start') return undefined;
  return runView(record, entries, engine.now(), (result) => engine.codec.decode(result, key));
}

export async function status(workflows: Workflows, id: string): Promise<RunView> {
  const view = await readRun(workflows, runKeyOf(id));
  if (view === undefined) throw notFound(id);
  return view;
}

export interface ListRunsOptions {
  /** Runs on the page: 1 to 1,000. Default 100. */
  limit?: number;
  /** From the previous page's `nextCursor`. */
  cursor?: string;
}

export async function listRuns(
  workflows: Workflows,
  options: ListRunsOptions = {},
): Promise<{ runs: RunView[]; nextCursor: string | undefined }> {
  const { engine, store } = workflows;
  const page = await engine.call('runs', () => store.runs(options));
  const views = await Promise.all(page.keys.map((key) => readRun(workflows, key)));
  return { runs: views.filter((view) => view !== undefined), nextCursor: page.nextCursor };
}

/**
 * Asks run `id` to stop: a running run stops at its next step that would run (steps already
 * recorded still replay), runs its undos and ends `cancelled`. A sleeping or parked run is woken
 * so a worker does that at once. A finished run is left as it is (returns false).
 */
export async function cancel(workflows: Workflows, id: string, reason: string): Promise<boolean> {
  const { engine, store } = workflows;
  const key = runKeyOf(id);
  const record = await engine.call('get', () => store.get(key, engine.now()));
  if (record === null) throw notFound(id);
  if (record.state === 'completed') return false;
  const cancelKey = cancelKeyOf(id);
  const nowMs = engine.now();
  const token = randomUUID();
  const claim = await engine.call('claim', () =>
    store.claim({
      key: cancelKey,
      fingerprint: 'cancel',
      token,
      nowMs,
      leaseExpiresAtMs: nowMs + engine.leaseMs,
      expiresAtMs: record.expiresAtMs + engine.retentionMs,
    }),
  );
  if (claim.claimed) {
    const payload = defaultSerializer.encode(reason);
    await engine.call('complete', () =>
      store.complete({
        key: cancelKey,
        token,
        result: engine.codec.encode({ kind: OutcomeKind.value, payload }, cancelKey),
        nowMs,
        expiresAtMs: record.expiresAtMs + engine.retentionMs,
      }),
    );
  }
  await wakeIfIdle(workflows, record);
  return true;
}

/**
 * Resumes a parked run (dead after too many attempts, or blocked by a code mismatch): records the
 * resume, and cuts its lease so a worker takes it up at once. Returns false when it is not parked.
 */
export async function resume(workflows: Workflows, id: string): Promise<boolean> {
  const view = await status(workflows, id);
  if (view.state !== 'dead' && view.state !== 'blocked') return false;
  const { engine, store, entryCodec } = workflows;
  const key = runKeyOf(id);
  const record = await engine.call('get', () => store.get(key, engine.now()));
  if (record === null || record.state !== 'in_progress') return false;
  const raw = await engine.call('entries', () => store.entries(key));
  const seq = (raw.at(-1)?.seq ?? 0) + 1;
  const data = entryCodec.encode(key, seq, { t: 'resumed', attempts: record.attempts });
  const nowMs = engine.now();
  // Parked runs have no live holder, so borrowing the record's token to append cannot race one.
  const ok = await engine.call('append', () => store.append({ key, token: record.token, seq, data, nowMs }));
  if (!ok) return false;
  return cutLease(workflows, record);
}

/** A run with no live holder (sleeping, parked) is made due now; a live holder's token would have changed. */
async function wakeIfIdle(workflows: Workflows, record: IdempotencyRecord): Promise<void> {
  if (record.state !== 'in_progress' || record.leaseExpiresAtMs <= workflows.engine.now() + workflows.engine.leaseMs)
    return;
  await cutLease(workflows, record);
}

function cutLease(workflows: Workflows, record: IdempotencyRecord): Promise<boolean> {
  return makeDueNow(workflows.engine, workflows.store, record.key, record.token);
}

export function checkReason(reason: unknown): string {
  if (typeof reason !== 'string' || reason.length > 1000) {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      '[idem] cancel(id, reason): give the reason as text of at most 1,000 characters.',
    );
  }
  return reason;
}
