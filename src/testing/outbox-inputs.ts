/** What the outbox conformance scenarios share: their context, and publishers that record. */
import assert from 'node:assert/strict';
import { type ErrorCode, isIdempotencyError } from '../core/errors.js';
import type {
  OutboxMessage,
  OutboxStore,
  PendingMessage,
  PublishResult,
  RelayPassInput,
  RelayPassResult,
} from '../messaging/outbox/outbox.js';

/**
 * What a factory module's `createOutbox(table)` builds: an outbox on an empty table of that name,
 * and a way to run a transaction of the database it lives in.
 */
export interface OutboxConformanceTarget<Tx = unknown> {
  /** The outbox under test. */
  outbox: OutboxStore<Tx>;
  /**
   * Runs `body` in a transaction of the outbox's database: commits when it resolves (and resolves
   * to its value), rolls back when it throws (and throws that error again).
   */
  transaction<T>(body: (tx: Tx) => Promise<T>): Promise<T>;
  /** Closes the outbox and whatever the factory opened for it. Called once. */
  close(): Promise<void>;
}

/** How many processes and messages the concurrency scenarios use. */
export interface OutboxScenarioCounts {
  /** Relay processes in the cross-process scenario (and concurrent passes in one process). */
  processes: number;
  /** Messages they share. */
  messages: number;
}

/** What a scenario gets: a fresh target on its own table, and how a child process builds the same. */
export interface OutboxScenarioContext {
  target: OutboxConformanceTarget;
  outbox: OutboxStore<unknown>;
  /** The table's name: `[a-z0-9_]`, at most 30 characters. */
  table: string;
  /** How a child process builds the same target. */
  job: { factoryModule: string; createExport: string; table: string };
  counts: OutboxScenarioCounts;
}

/** Enqueues `message` in a transaction of its own, committed. */
export function enqueueOne(context: OutboxScenarioContext, message: OutboxMessage): Promise<string> {
  return context.target.transaction((tx) => context.outbox.enqueue(tx, message));
}

/** Enqueues `messages` in one committed transaction, in order; resolves to their ids. */
export function enqueueAll(context: OutboxScenarioContext, messages: readonly OutboxMessage[]): Promise<string[]> {
  return context.target.transaction(async (tx) => {
    const ids: string[] = [];
    for (const message of messages) ids.push(await context.outbox.enqueue(tx, message));
    return ids;
  });
}

/** A publisher that answers `answer(message)` for each message (ok by default) and keeps what it was given. */
export function recorder(answer: (message: PendingMessage) => PublishResult = () => ({ ok: true })) {
  const seen: PendingMessage[] = [];
  return {
    seen,
    ids: () => seen.map((message) => message.id),
    publish: async (messages: readonly PendingMessage[]) => {
      seen.push(...messages);
      return messages.map(answer);
    },
  };
}

/** One pass at `nowMs` (default now) with `publish`; failures are dead unless `retryAtMs` is given. */
export function pass(
  outbox: OutboxStore<unknown>,
  publish: RelayPassInput['publish'],
  over: Partial<Omit<RelayPassInput, 'publish'>> = {},
): Promise<RelayPassResult> {
  return outbox.relay({ limit: 100, nowMs: Date.now(), retryAtMs: () => undefined, ...over, publish });
}

export function result(claimed: number, published: number, failed = 0, dead = 0): RelayPassResult {
  return { claimed, published, failed, dead };
}

/** The bytes as UTF-8 text. */
export function text(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

/** Asserts that `promise` rejects with an `IdempotencyError` of `code`. */
export async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, what: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isIdempotencyError(error, code), `${what}: expected ${code}, got ${String(error)}`);
    return true;
  });
}

/** A promise with its resolve function, to hold a publish open until the scenario lets it go. */
export function gate(): { opened: Promise<void>; open(): void } {
  let open = (): void => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs passes until every message is published: a pass that finds nothing while messages are
 * still pending (held by a pass elsewhere, or leased by a relay that died) waits and tries again,
 * for up to `patienceMs`.
 */
export async function drain(
  outbox: OutboxStore<unknown>,
  publish: RelayPassInput['publish'],
  limit = 50,
  patienceMs = 30_000,
): Promise<void> {
  const giveUpAt = Date.now() + patienceMs;
  for (;;) {
    const done = await pass(outbox, publish, { limit });
    if (done.claimed > 0) continue;
    if ((await outbox.counts()).pending === 0) return;
    if (Date.now() > giveUpAt) throw new Error(`messages stayed pending for ${patienceMs} ms`);
    await pause(20);
  }
}
