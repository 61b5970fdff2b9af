import { setTimeout as sleep } from 'node:timers/promises';

/** The one method `switchToWal` needs: better-sqlite3's `Database` has it. */
export interface PragmaRunner {
  pragma(source: string): unknown;
}

/**
 * Switches a connection's file to WAL. Connections that switch a new file together can deadlock
 * over its rollback-journal locks, and SQLite then answers SQLITE_BUSY at once instead of waiting
 * (it calls no busy handler on a deadlock): the switch is tried again, a few ms apart, for up to
 * the busy timeout, as a wait for the lock would have been.
 */
export async function switchToWal(db: PragmaRunner, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      if (code !== 'SQLITE_BUSY' || performance.now() >= deadline) throw error;
    }
    // Apart by a random few ms, so the connections that deadlocked do not meet again.
    await sleep(1 + Math.random() * 9);
  }
}
