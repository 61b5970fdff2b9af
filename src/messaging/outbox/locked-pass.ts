/**
 * One relay pass where the database holds row locks for the length of a transaction (PostgreSQL,
 * MySQL): BEGIN; lock the due messages (`FOR UPDATE SKIP LOCKED`); publish; mark; COMMIT. Each
 * dialect gives its statements as a `PassConnection`; the script is the same.
 */
import type { RelayPassInput, RelayPassResult } from './outbox.js';
import { CallerFailed, callerCode, MAX_TRANSACTION_ATTEMPTS, pause } from './outbox-operations.js';
import { EMPTY_PASS, marksOf, type PassMarks, type PendingRow, passResult, pendingOf } from './outbox-rules.js';

/** A connection of the outbox's own, checked out for one pass. */
export interface PassConnection {
  /** Opens the pass's transaction. */
  begin(): Promise<void>;
  /** Locks up to `limit` messages due by `nowMs` that no other pass holds, oldest first (one per key). */
  claim(nowMs: number, limit: number): Promise<PendingRow[]>;
  /** Writes the marks of the pass (published at `nowMs`, failed, dead). */
  mark(marks: PassMarks, nowMs: number): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  /** Gives the connection back to its pool; `destroy` when its state is unknown (a ROLLBACK failed). */
  release(destroy: boolean): void;
}

/**
 * Runs one pass on a connection from `connect`. A deadlock before anything was published (the
 * server rolled the pass back whole) runs it again on a fresh connection; after `publish` ran, any
 * failure rolls back and is thrown: the messages stay pending and are published again later.
 */
export async function lockedPass(
  dialect: string,
  connect: () => Promise<PassConnection>,
  input: RelayPassInput,
  isRetryable: (error: unknown) => boolean,
): Promise<RelayPassResult> {
  for (let round = 1; ; round++) {
    const state = { published: false };
    try {
      return await passOn(dialect, await connect(), input, state);
    } catch (error) {
      if (state.published || error instanceof CallerFailed) throw error;
      if (round >= MAX_TRANSACTION_ATTEMPTS || !isRetryable(error)) throw error;
    }
    await pause(Math.floor(Math.random() * 10 * round) + 1);
  }
}

async function passOn(
  dialect: string,
  connection: PassConnection,
  input: RelayPassInput,
  state: { published: boolean },
): Promise<RelayPassResult> {
  let destroy = false;
  try {
    await connection.begin();
    const rows = await connection.claim(input.nowMs, input.limit);
    if (rows.length === 0) {
      await connection.commit();
      return EMPTY_PASS;
    }
    const messages = rows.map(pendingOf);
    state.published = true;
    // Runs while the rows are locked: another pass skips them, and a second pass cannot take a
    // later message of one of their keys (its oldest pending is one of these).
    const marks = await callerCode(async () => marksOf(dialect, messages, await input.publish(messages), input));
    await connection.mark(marks, input.nowMs);
    await connection.commit();
    return passResult(messages.length, marks);
  } catch (error) {
    destroy = !(await connection.rollback().then(
      () => true,
      () => false,
    ));
    throw error;
  } finally {
    connection.release(destroy);
  }
}
