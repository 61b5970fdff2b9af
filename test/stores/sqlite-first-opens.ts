/**
 * The SQLite first-open race: `processes` real processes open a new file at the same moment,
 * `rounds` times, each round a file of its own. Connections that switch a new file to WAL
 * together can deadlock over its rollback-journal locks, and SQLite then answers SQLITE_BUSY at
 * once, without waiting for the busy timeout.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface FirstOpens {
  /** What each process opens: a SqliteStore, or a SQLite outbox. */
  kind: 'store' | 'outbox';
  processes: number;
  rounds: number;
  /** A new file path for each round. */
  freshPath: () => string;
}

/** Every first open that failed, as `round N: <code> <message>`; none when all answered. */
export async function refusedFirstOpens({ kind, processes, rounds, freshPath }: FirstOpens): Promise<string[]> {
  const openers = await Promise.allSettled(Array.from({ length: processes }, () => startOpener(kind)));
  try {
    const started = openers.map((opener) => {
      if (opener.status === 'rejected') throw opener.reason;
      return opener.value;
    });
    const refused: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const path = freshPath();
      for (const opener of started) opener.child.stdin?.write(`${path}\n`);
      const answers = await Promise.all(started.map((opener) => opener.nextLine()));
      refused.push(...answers.filter((answer) => answer !== 'ok').map((answer) => `round ${round}: ${answer}`));
    }
    return refused;
  } finally {
    for (const opener of openers) if (opener.status === 'fulfilled') opener.value.child.kill('SIGKILL');
  }
}

/** A process that opens what `kind` names on each path it is sent, once it said `ready`. */
async function startOpener(
  kind: FirstOpens['kind'],
): Promise<{ child: ChildProcess; nextLine: () => Promise<string> }> {
  const script = new URL('./sqlite-opener.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, [...process.execArgv, script, kind], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  const exited = new Promise<null>((resolve) => child.once('exit', () => resolve(null)));
  const nextLine = async (): Promise<string> => {
    const next = await Promise.race([lines.next(), exited]);
    if (next === null || next.done === true) throw new Error('the opener process exited');
    return next.value;
  };
  const first = await nextLine().catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
  assert.equal(first, 'ready');
  return { child, nextLine };
}
