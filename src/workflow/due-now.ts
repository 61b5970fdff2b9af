import type { Engine } from '../core/engine.js';
import type { JournalStore } from '../core/journal.js';

/**
 * Makes run `key` due now, if it still holds `token`: its lease ends at once (its retention is
 * left as it is), so a worker takes it up at its next look. Used to wake a run that waits with no
 * holder (a cancellation, a resume, a signal) and to give a run back. False when the token no
 * longer holds: someone took the run meanwhile, and nothing changed.
 */
export function makeDueNow(engine: Engine, store: JournalStore, key: string, token: string): Promise<boolean> {
  const nowMs = engine.now();
  return engine.call('extend', () => store.extend({ key, token, nowMs, leaseExpiresAtMs: nowMs, expiresAtMs: 0 }));
}
