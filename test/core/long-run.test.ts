import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import { idempotent } from '../../src/core/idempotent.js';
import type { ExtendInput } from '../../src/core/store.js';
import { MemoryStore } from '../../src/stores/memory/index.js';

/** A memory store that lets a test wait for the heartbeat's next extension. */
class WatchedStore extends MemoryStore {
  #waiters: { atMs: number; resolve: () => void }[] = [];

  override async extend(input: ExtendInput): Promise<boolean> {
    const extended = await super.extend(input);
    for (const waiter of this.#waiters.filter((w) => input.nowMs >= w.atMs)) waiter.resolve();
    this.#waiters = this.#waiters.filter((w) => input.nowMs < w.atMs);
    return extended;
  }

  /** Resolves once an extension made at `atMs` or later has been stored. */
  extendedAt(atMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const guard = setTimeout(() => reject(new Error(`no heartbeat at ${atMs} within 10 s`)), 10_000);
      this.#waiters.push({
        atMs,
        resolve: () => {
          clearTimeout(guard);
          resolve();
        },
      });
    });
  }
}

describe('a lease kept alive by its heartbeat', () => {
  it('keeps the key for work that runs ten times past the retention: no second run', async () => {
    let nowMs = 1_700_000_000_000;
    const store = new WatchedStore();
    let runs = 0;
    let finish: (() => void) | undefined;
    const report = idempotent(
      async (_id: string) => {
        runs += 1;
        await new Promise<void>((resolve) => {
          finish = resolve;
        });
        return 'report ready';
      },
      { store, name: 'report', key: (id) => id, leaseMs: 100, retentionMs: 300, heartbeatMs: 5, now: () => nowMs },
    );
    const first = report('r-1');

    // The clock moves 90 ms at a time (less than the lease) and waits for a heartbeat at each
    // step, until the work has run for 3000 ms against a retention of 300 ms.
    for (let step = 0; step < 33; step++) {
      nowMs += 90;
      await store.extendedAt(nowMs);
    }
    await assert.rejects(report('r-1'), (error: unknown) => {
      assert.ok(isIdempotencyError(error, ErrorCode.IN_PROGRESS), `expected IN_PROGRESS, got ${String(error)}`);
      return true;
    });
    assert.equal(runs, 1, 'the second caller did not run the work again');

    finish?.();
    assert.equal(await first, 'report ready', 'the first holder stores its result');
    assert.equal(await report('r-1'), 'report ready');
    assert.equal(runs, 1);
  });
});
