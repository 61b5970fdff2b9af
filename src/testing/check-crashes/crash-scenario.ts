import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IdemEvent } from '../../core/telemetry.js';

/** The environment `checkCrashes` gives its child process. */
export const CRASH_ENV = {
  /** The run's own directory: effects, boundaries and the user's store live there. */
  dir: 'IDEM_CRASH_DIR',
  /** The boundary (1-based) at which the child kills itself; unset: run to the end. */
  at: 'IDEM_CRASH_AT',
  /** 1 for the run that may be killed, 2 and more for the re-runs. */
  run: 'IDEM_CRASH_RUN',
} as const;

/** Files in the run's directory. */
export const CRASH_FILES = { effects: 'effects.log', boundaries: 'boundaries.log' } as const;

/** What a crash scenario's body gets. */
export interface CrashContext {
  /**
   * A directory of this kill point's own, shared by the run that is killed and its re-runs: put
   * the store there (a SQLite file), so the re-run sees what the killed run recorded.
   */
  dir: string;
  /** 1 for the run that may be killed, 2 and more for the re-runs. */
  run: number;
  /**
   * Records one effect (an email sent, a card charged) right after it happened, then marks a
   * boundary: the check kills the process there in turn. Written synchronously, so a kill cannot lose it.
   */
  effect(name: string): void;
  /** Give it to Idem as `onEvent`: each claim, complete and release is a boundary. */
  onEvent(event: IdemEvent): void;
  /** Marks a boundary of your own, e.g. between two writes. */
  boundary(label: string): void;
}

/**
 * The child side of `checkCrashes`: the module `checkCrashes` runs calls it once with the work to
 * check. Each `effect`, each Idem event given to `onEvent` and each `boundary` is a boundary; the
 * check kills the process (SIGKILL) at one boundary per run, then runs the module again to the end.
 *
 * @example
 * ```ts
 * // charge-crash.ts, run by checkCrashes(new URL('./charge-crash.ts', import.meta.url))
 * await crashScenario(async ({ dir, effect, onEvent }) => {
 *   const store = new SqliteStore({ path: join(dir, 'idem.db') });
 *   const charge = idempotent(async (id: string) => effect(`charge ${id}`), { store, name: 'charge', onEvent });
 *   await charge('order-1');
 *   await store.close();
 * });
 * ```
 */
export async function crashScenario(body: (context: CrashContext) => Promise<void> | void): Promise<void> {
  const dir = process.env[CRASH_ENV.dir];
  if (dir === undefined) {
    throw new Error(`[idem] crashScenario: ${CRASH_ENV.dir} is not set; run this module through checkCrashes(path).`);
  }
  const crashAt = process.env[CRASH_ENV.at] === undefined ? undefined : Number(process.env[CRASH_ENV.at]);
  const run = Number(process.env[CRASH_ENV.run] ?? 1);
  let reached = 0;
  const boundary = (label: string) => {
    reached += 1;
    appendFileSync(join(dir, CRASH_FILES.boundaries), `${run}\t${reached}\t${label}\n`);
    // The kill is the child's own, at the exact boundary: no race with a parent's signal.
    if (reached === crashAt) process.kill(process.pid, 'SIGKILL');
  };
  await body({
    dir,
    run,
    effect(name) {
      appendFileSync(join(dir, CRASH_FILES.effects), `${name.replace(/\s+/g, ' ')}\n`);
      boundary(`after effect "${name}"`);
    },
    onEvent(event) {
      boundary(event.type === 'claim' ? `after claim (${event.outcome})` : `after ${event.type}`);
    },
    boundary,
  });
}
