/**
 * Signals: values sent to a run from outside (an approval, a webhook's answer) that the run waits
 * for with `ctx.waitForSignal`. A signal is an ordinary record keyed by workflow id and name; the
 * first one sent counts. Sending one wakes a run that waits: its lease is cut short, so a worker
 * takes it up at once.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode, IdempotencyError } from '../core/errors.js';
import { OutcomeKind } from '../core/outcome.js';
import { defaultSerializer } from '../core/value-codec.js';
import { makeDueNow } from './due-now.js';
import { runKeyOf, signalKeyOf } from './keys.js';
import type { Workflows } from './workflows.js';

export async function sendSignal(workflows: Workflows, id: string, name: string, value: unknown): Promise<boolean> {
  if (typeof name !== 'string' || name === '' || name.length > 255) {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      '[idem] signal(id, name, value): give the signal a name of 1 to 255 characters.',
    );
  }
  const { engine, store } = workflows;
  const key = signalKeyOf(id, name);
  let payload: Uint8Array;
  try {
    payload = defaultSerializer.encode(value);
  } catch (cause) {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      `[idem] the value of signal "${name}" cannot be recorded; send plain data.`,
      { cause },
    );
  }
  const nowMs = engine.now();
  const token = randomUUID();
  const expiresAtMs = nowMs + engine.retentionMs;
  const claim = await engine.call('claim', () =>
    store.claim({ key, fingerprint: 'signal', token, nowMs, leaseExpiresAtMs: nowMs + engine.leaseMs, expiresAtMs }),
  );
  if (!claim.claimed) return false;
  const result = engine.codec.encode({ kind: OutcomeKind.value, payload }, key);
  await engine.call('complete', () => store.complete({ key, token, result, nowMs, expiresAtMs }));
  await wakeIfWaiting(workflows, id);
  return true;
}

export async function readSignal(
  workflows: Workflows,
  id: string,
  name: string,
): Promise<{ value: unknown } | undefined> {
  const { engine, store } = workflows;
  const key = signalKeyOf(id, name);
  const record = await engine.call('get', () => store.get(key, engine.now()));
  if (record?.state !== 'completed' || record.result === null) return undefined;
  return { value: defaultSerializer.decode(engine.codec.decode(record.result, key).payload) };
}

/** A run whose last entry is a wait holds no process: its lease is cut so a worker takes it up now. */
async function wakeIfWaiting(workflows: Workflows, id: string): Promise<void> {
  const { engine, store, entryCodec } = workflows;
  const key = runKeyOf(id);
  const record = await engine.call('get', () => store.get(key, engine.now()));
  if (record?.state !== 'in_progress' || record.leaseExpiresAtMs <= engine.now()) return;
  const entries = await engine.call('entries', () => store.entries(key));
  const last = entries.at(-1);
  if (last === undefined || entryCodec.decode(key, last).entry.t !== 'wait') return;
  // The token read with the record: if a holder took the run meanwhile, this changes nothing.
  await makeDueNow(engine, store, key, record.token);
}
