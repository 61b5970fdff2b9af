// The engine's lease (src/core/engine.ts): the heartbeat that extends it while the work runs,
// release, a lease lost to a takeover, and the options that shape it. The heartbeat tests run on
// a real clock with a short lease and assert what the record holds, never how long anything took.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Decision, Engine, type EngineOptions, type Lease } from '../../src/core/engine.js';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import { type Outcome, OutcomeKind } from '../../src/core/outcome.js';
import type { ExtendInput, IdempotencyRecord } from '../../src/core/store.js';
import { MemoryStore } from '../../src/stores/memory/index.js';

const HOUR_MS = 3_600_000;
const done: Outcome = { kind: OutcomeKind.value, payload: new TextEncoder().encode('"done"') };

const withCode = (code: ErrorCode, pattern?: RegExp) => (error: unknown) => {
  assert.ok(isIdempotencyError(error, code), `expected ${code}, got ${String(error)}`);
  if (pattern) assert.match(error.message, pattern);
  return true;
};

/** A memory store that counts the extensions it is asked for and can fail the next few. */
class WatchedStore extends MemoryStore {
  extensions = 0;
  failNextExtensions = 0;

  /** The keys extended, in order. */
  extendedKeys: string[] = [];

  override async extend(input: ExtendInput): Promise<boolean> {
    this.extensions += 1;
    this.extendedKeys.push(input.key);
    if (this.failNextExtensions > 0) {
      this.failNextExtensions -= 1;
      throw new Error('connection reset by peer');
    }
    return super.extend(input);
  }
}

/** Waits until `condition` holds, checking every 10 ms; fails after 10 s (a guard, not a timing claim). */
async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let waitedMs = 0; !(await condition()); waitedMs += 10) {
    if (waitedMs >= 10_000) throw new Error(`still waiting after 10 s for ${what}`);
    await sleep(10);
  }
}

function leaseOf(decision: Decision): Lease {
  assert.equal(decision.kind, 'run', `expected to run, got ${decision.kind}`);
  return decision.lease;
}

async function recordOf(store: MemoryStore, key: string): Promise<IdempotencyRecord> {
  const record = await store.get(key);
  assert.ok(record, `a record for ${key}`);
  return record;
}

/** Frees `key` behind its holder's back and claims it for `token`, as an operator and a new caller would. */
async function takeOver(store: MemoryStore, key: string, token = 'rival'): Promise<void> {
  const nowMs = Date.now();
  await store.delete(key);
  const claim = await store.claim({
    key,
    fingerprint: 'fp',
    token,
    nowMs,
    leaseExpiresAtMs: nowMs + 60_000,
    expiresAtMs: nowMs + HOUR_MS,
  });
  assert.equal(claim.claimed, true);
}

describe('engine lease: heartbeat', () => {
  it('extends the lease and the retention while the work runs, so the key outlives its first lease', async () => {
    const store = new WatchedStore();
    const engine = new Engine({ store, leaseMs: 300, heartbeatMs: 100 });
    const lease = leaseOf(await engine.begin({ key: 'k', fingerprint: 'fp' }));
    const claimed = await recordOf(store, 'k');

    await until(async () => (await recordOf(store, 'k')).leaseExpiresAtMs > claimed.leaseExpiresAtMs, 'an extension');
    const extended = await recordOf(store, 'k');
    assert.equal(extended.state, 'in_progress');
    assert.equal(extended.token, lease.token, 'the holder keeps its token');
    assert.ok(extended.expiresAtMs > claimed.expiresAtMs, 'retention is raised with the lease');
    assert.ok(extended.updatedAtMs > claimed.updatedAtMs);

    // Past the end of the lease it was claimed with, the key is still held: a second caller waits.
    await until(() => Date.now() > claimed.leaseExpiresAtMs + 50, 'the first lease end to pass');
    const second = await engine.begin({ key: 'k', fingerprint: 'fp' });
    assert.equal(second.kind, 'in_progress', 'nobody takes over a lease its heartbeat keeps alive');

    assert.equal(await lease.complete(done), true);
    const replay = await engine.begin({ key: 'k', fingerprint: 'fp' });
    assert.equal(replay.kind, 'replay');
  });

  it('beats every lease held on one engine, and keeps beating those still held after others end', async () => {
    // One timer serves all the engine's leases: ending some must not stop it for the rest.
    const store = new WatchedStore();
    const engine = new Engine({ store, leaseMs: 300, heartbeatMs: 100 });
    const leases = await Promise.all(
      ['a', 'b', 'c'].map(async (key) => leaseOf(await engine.begin({ key, fingerprint: 'fp' }))),
    );
    await until(() => ['a', 'b', 'c'].every((key) => store.extendedKeys.includes(key)), 'a heartbeat of each lease');
    await leases[0]?.complete(done);
    await leases[1]?.release();
    store.extendedKeys = [];
    const held = await recordOf(store, 'c');
    await until(
      () => store.extendedKeys.filter((key) => key === 'c').length >= 3,
      'three more beats of the lease still held',
    );
    assert.deepEqual([...new Set(store.extendedKeys)], ['c'], 'only the lease still held is extended');
    assert.ok((await recordOf(store, 'c')).leaseExpiresAtMs > held.leaseExpiresAtMs);
    await leases[2]?.complete(done);
  });

  it('stops once the lease is completed or released', async () => {
    const store = new WatchedStore();
    const engine = new Engine({ store, leaseMs: 300, heartbeatMs: 100 });
    const completed = leaseOf(await engine.begin({ key: 'completed', fingerprint: 'fp' }));
    const released = leaseOf(await engine.begin({ key: 'released', fingerprint: 'fp' }));
    await until(() => store.extensions >= 2, 'a heartbeat of each lease');
    await completed.complete(done);
    await released.release();
    const extensions = store.extensions;
    await sleep(350); // more than three heartbeats
    assert.equal(store.extensions, extensions, 'no extension after complete and release');
  });

  it('never extends with heartbeatMs 0: the lease runs out and the next caller takes over', async () => {
    const store = new WatchedStore();
    const engine = new Engine({ store, leaseMs: 200, heartbeatMs: 0 });
    const first = leaseOf(await engine.begin({ key: 'k', fingerprint: 'fp' }));
    const { leaseExpiresAtMs } = await recordOf(store, 'k');
    await until(() => Date.now() > leaseExpiresAtMs, 'the lease end to pass');
    const second = leaseOf(await engine.begin({ key: 'k', fingerprint: 'fp' }));
    assert.equal(store.extensions, 0);
    assert.equal(second.attempts, 2);
    assert.notEqual(second.token, first.token);
  });

  it('survives a store blip: a failed extension is retried on the next beat and the lease is kept', async () => {
    const store = new WatchedStore();
    store.failNextExtensions = 2;
    const engine = new Engine({ store, leaseMs: 300, heartbeatMs: 100 });
    const lease = leaseOf(await engine.begin({ key: 'k', fingerprint: 'fp' }));
    const claimed = await recordOf(store, 'k');
    const signal = lease.signal;
    await until(async () => (await recordOf(store, 'k')).leaseExpiresAtMs > claimed.leaseExpiresAtMs, 'an extension');
    assert.ok(store.extensions >= 3, 'two failed extensions, then one that worked');
    assert.equal(signal.aborted, false, 'a store error does not count as a lost lease');
    assert.equal(await lease.complete(done), true);
  });
});

describe('engine lease: release', () => {
  it('deletes the record, so a retry runs from scratch with a new token', async () => {
    const store = new MemoryStore();
    const engine = new Engine({ store, heartbeatMs: 0 });
    const first = leaseOf(await engine.begin({ key: 'k', fingerprint: 'fp' }));
    await first.release();
    assert.equal(await store.get('k'), null);
    const retry = leaseOf(await engine.begin({ key: 'k', fingerprint: 'fp' }));
    assert.equal(retry.attempts, 1, 'a released key starts over, it is not a takeover');
    assert.notEqual(retry.token, first.token);
  });

  it('after a takeover is quiet and leaves the new holder its record', async () => {
    const store = new MemoryStore();
    const engine = new Engine({ store, heartbeatMs: 0 });
    const lease = leaseOf(await engine.begin({ key: 'k', fingerprint: 'fp' }));
    await takeOver(store, 'k');
    await lease.release();
    const record = await recordOf(store, 'k');
    assert.equal(record.token, 'rival');
    assert.equal(record.state, 'in_progress');
  });
});

describe('engine lease: lost to a takeover', () => {
  it('the heartbeat finds out: the signal aborts with LEASE_LOST, complete is refused and stores nothing', async () => {
    const store = new WatchedStore();
    const engine = new Engine({ store, leaseMs: 300, heartbeatMs: 100 });
    const lease = leaseOf(await engine.begin({ key: 'k', fingerprint: 'fp' }));
    const signal = lease.signal;
    await takeOver(store, 'k');

    await until(() => signal.aborted, 'the signal to abort');
    assert.ok(isIdempotencyError(signal.reason, ErrorCode.LEASE_LOST), String(signal.reason));
    assert.equal(signal.reason.key, 'k');
    assert.match(signal.reason.message, /^\[idem\] \[memory\] lease lost for key k: .*stop the work/);

    await assert.rejects(lease.complete(done), withCode(ErrorCode.LEASE_LOST, /the result was not stored/));
    await assert.rejects(lease.extend(), withCode(ErrorCode.LEASE_LOST));
    const record = await recordOf(store, 'k');
    assert.equal(record.token, 'rival');
    assert.equal(record.state, 'in_progress');
    assert.equal(record.result, null, "the old holder's result is not stored");

    const extensions = store.extensions;
    await sleep(350);
    assert.equal(store.extensions, extensions, 'the heartbeat stops for good once the lease is lost');
  });

  it('with the heartbeat off, the refused complete tells: LEASE_LOST, and a signal asked for after comes aborted', async () => {
    const store = new MemoryStore();
    let nowMs = 1_700_000_000_000;
    const options: EngineOptions = { store, leaseMs: 1000, heartbeatMs: 0, now: () => nowMs };
    const first = leaseOf(await new Engine(options).begin({ key: 'k', fingerprint: 'fp' }));
    nowMs += 1000;
    const second = leaseOf(await new Engine(options).begin({ key: 'k', fingerprint: 'fp' }));
    assert.equal(second.attempts, 2);

    await assert.rejects(
      first.complete(done),
      withCode(ErrorCode.LEASE_LOST, /after 1000 ms; the result was not stored/),
    );
    assert.equal(first.signal.aborted, true, 'made after the loss, the signal is already aborted');
    assert.ok(isIdempotencyError(first.signal.reason, ErrorCode.LEASE_LOST));
    assert.equal(second.signal.aborted, false, "the new holder's signal is its own");
    assert.equal(await second.complete(done), true);
  });
});

describe('engine lease: complete', () => {
  it('records an outcome over maxResultBytes as too large, with its size, and returns false', async () => {
    const store = new MemoryStore();
    const engine = new Engine({ store, heartbeatMs: 0, maxResultBytes: 64 });
    const lease = leaseOf(await engine.begin({ key: 'k', fingerprint: 'fp' }));
    assert.equal(await lease.complete({ kind: OutcomeKind.value, payload: new Uint8Array(100) }), false);
    const replay = await engine.begin({ key: 'k', fingerprint: 'fp' });
    assert.equal(replay.kind, 'replay');
    assert.equal(replay.outcome.kind, OutcomeKind.tooLarge);
    assert.equal(new TextDecoder().decode(replay.outcome.payload), '100');
  });
});

describe('engine options', () => {
  const store = new MemoryStore();

  it('defaults the heartbeat to a third of the lease', () => {
    const engine = new Engine({ store, leaseMs: 3000 });
    assert.equal(engine.heartbeatMs, 1000);
    assert.equal(new Engine({ store, leaseMs: 100 }).heartbeatMs, 33);
  });

  it('refuses a missing store, or something that is not one', () => {
    assert.throws(() => new Engine(undefined as never), withCode(ErrorCode.INVALID_OPTIONS, /`store` is required/));
    assert.throws(() => new Engine({} as never), withCode(ErrorCode.INVALID_OPTIONS, /`store` is required/));
    assert.throws(
      () => new Engine({ store: { name: 'x' } as never }),
      withCode(ErrorCode.INVALID_OPTIONS, /`store` is required/),
    );
  });

  for (const name of ['leaseMs', 'retentionMs', 'storeTimeoutMs', 'maxResultBytes'] as const) {
    it(`refuses a ${name} that is not a positive number, naming it`, () => {
      for (const value of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
        assert.throws(
          () => new Engine({ store, [name]: value }),
          withCode(ErrorCode.INVALID_OPTIONS, new RegExp(`${name} must be a positive number`)),
          `${name}: ${value}`,
        );
      }
    });
  }

  it('refuses a negative or infinite heartbeatMs, and one not shorter than the lease', () => {
    for (const heartbeatMs of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => new Engine({ store, heartbeatMs }),
        withCode(ErrorCode.INVALID_OPTIONS, /heartbeatMs must be 0 or a positive number/),
      );
    }
    assert.throws(
      () => new Engine({ store, leaseMs: 300, heartbeatMs: 300 }),
      withCode(ErrorCode.INVALID_OPTIONS, /heartbeatMs \(300\) must be shorter than leaseMs \(300\), or 0/),
    );
    assert.equal(new Engine({ store, leaseMs: 300, heartbeatMs: 299 }).heartbeatMs, 299);
    assert.equal(new Engine({ store, leaseMs: 300, heartbeatMs: 0 }).heartbeatMs, 0);
  });

  it('refuses a retention that does not outlive the lease', () => {
    assert.throws(
      () => new Engine({ store, leaseMs: 5000, retentionMs: 5000 }),
      withCode(ErrorCode.INVALID_OPTIONS, /retentionMs \(5000\) must be longer than leaseMs \(5000\)/),
    );
    assert.equal(new Engine({ store, leaseMs: 5000, retentionMs: 5001 }).retentionMs, 5001);
  });
});
