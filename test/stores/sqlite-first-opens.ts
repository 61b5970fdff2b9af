/**
 * The SQLite first-open race: `processes` real processes open a new file at the same moment,
 * `rounds` times, each round a file of its own. Connections that switch a new file to WAL
 * together can deadlock over its rollback-journal locks, and SQLite then answers SQLITE_BUSY at
 * once, without waiting for the busy timeout.
 */
import { startLineProcess, startWorkers } from '../../src/testing/process-scenarios.js';

export interface FirstOpens {
  /** What each process opens (see sqlite-opener.ts): a SqliteStore, or a SQLite outbox. */
  kind: 'store' | 'outbox';
  processes: number;
  rounds: number;
  /** A new file path for each round. */
  freshPath: () => string;
}

const opener = new URL('./sqlite-opener.ts', import.meta.url);

/** Every first open that failed, as `round N: <code> <message>`; none when all answered. */
export async function refusedFirstOpens({ kind, processes, rounds, freshPath }: FirstOpens): Promise<string[]> {
  const openers = await startWorkers(
    Array.from({ length: processes }, () => () => startLineProcess(opener, [kind], 'sqlite opener')),
  );
  try {
    const refused: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const path = freshPath();
      for (const { process: child } of openers) child.stdin?.write(`${path}\n`);
      const answers = await Promise.all(openers.map((worker) => worker.nextLine()));
      refused.push(...answers.filter((answer) => answer !== 'ok').map((answer) => `round ${round}: ${answer}`));
    }
    return refused;
  } finally {
    for (const { process: child } of openers) child.kill('SIGKILL');
  }
}
