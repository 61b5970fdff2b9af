/**
 * Conformance scenarios for the journal contract (`JournalStore`, src/core/journal.ts), one run at
 * a time: entries kept byte for byte and in `seq` order, `append` fenced by the run's token, seq 0
 * starting the journal afresh, entries living and dying with their record, and `reopen`. The
 * clock is passed in, so nothing sleeps.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DEFAULT_MAX_RESULT_BYTES } from '../core/engine.js';
import type { AppendInput, JournalStore, ReopenInput } from '../core/journal.js';
import {
  admin,
  appendInput,
  claimInput,
  HOUR_MS,
  journal,
  runsAll,
  type ScenarioContext,
  shown,
  utf8,
} from './conformance-inputs.js';

/** The record and the entries of `key`, to check that a refused call changed neither. */
async function snapshot(store: JournalStore, key: string): Promise<unknown> {
  const [record, entries] = await Promise.all([store.get(key), store.entries(key)]);
  return { record, entries: entries.map((entry) => ({ ...entry, data: [...entry.data] })) };
}

/**
 * Entries come back in `seq` order whatever the order of the appends, each with the `nowMs` of
 * its append, and with their bytes exactly: none, every byte value, the store's whole capacity.
 */
export async function appendAndEntries(context: ScenarioContext): Promise<void> {
  const store = journal(context.store);
  const t = Date.now();
  await store.claim(claimInput('run', { nowMs: t, token: 'a' }));
  await store.claim(claimInput('run-2', { nowMs: t, token: 'a' }));
  assert.deepEqual(await store.entries('run'), [], 'a run without entries');
  assert.deepEqual(await store.entries('none'), [], 'a key without a record');

  const everyByte = Uint8Array.from({ length: 512 }, (_, i) => i % 256);
  const full = new Uint8Array(randomBytes(store.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES));
  const data = [utf8('{"step":"charge"}'), new Uint8Array(0), everyByte, full];
  const kept = data.map((bytes) => Uint8Array.from(bytes));
  for (const [i, seq] of [0, 3, 1, 2].entries()) {
    const written = await store.append(appendInput('run', 'a', seq, t + 10 + i, data[seq]));
    assert.equal(written, true, `append of seq ${seq}`);
  }
  assert.equal(await store.append(appendInput('run-2', 'a', 0, t)), true);

  // The store keeps its own bytes: what the caller does to the arrays it gave or got changes nothing.
  for (const bytes of data) bytes.fill(7);
  (await store.entries('run'))[0]?.data.fill(7);
  const entries = await store.entries('run');
  assert.deepEqual(
    entries.map((entry) => [entry.seq, entry.atMs]),
    [
      [0, t + 10],
      [1, t + 12],
      [2, t + 13],
      [3, t + 11],
    ],
    'in seq order, each with the nowMs of its append',
  );
  for (const entry of entries) {
    const expected = kept[entry.seq] as Uint8Array;
    assert.ok(entry.data instanceof Uint8Array, `seq ${entry.seq} comes back as bytes`);
    assert.equal(entry.data.length, expected.length, `seq ${entry.seq} keeps its length`);
    assert.ok(Buffer.from(entry.data).equals(Buffer.from(expected)), `seq ${entry.seq} keeps its bytes`);
  }
  assert.deepEqual(shown(await store.entries('run-2')), [`0@${t}:run-2:0`], 'a key that shares a prefix is apart');
}

/**
 * `append` writes only while the record is in progress, holds the token and has not expired, and
 * only a free `seq`; a refused append (seq 0 included) changes nothing. A lease that ended does
 * not stop its holder until another takes the record over, and a takeover keeps the journal.
 */
export async function appendFencing(context: ScenarioContext): Promise<void> {
  const store = journal(context.store);
  const t = Date.now();
  const expiresAtMs = t + 60_000;
  await store.claim(claimInput('run', { nowMs: t, token: 'a', leaseMs: 1000, expiresAtMs }));
  assert.equal(await store.append(appendInput('run', 'a', 0, t)), true);
  assert.equal(await store.append(appendInput('run', 'a', 1, t + 1)), true);

  const refuse = async (why: string, input: AppendInput): Promise<void> => {
    const before = await snapshot(store, input.key);
    assert.equal(await store.append(input), false, why);
    assert.deepEqual(await snapshot(store, input.key), before, `${why}: nothing changed`);
  };
  await refuse('another token', appendInput('run', 'b', 2, t + 2));
  await refuse('another token, seq 0', appendInput('run', 'b', 0, t + 2));
  await refuse('a seq already taken', appendInput('run', 'a', 1, t + 2, utf8('again')));
  await refuse('no record', appendInput('none', 'a', 0, t + 2));
  await refuse('no record, seq 1', appendInput('none', 'a', 1, t + 2));
  await refuse('retention ended (expiresAtMs = nowMs)', appendInput('run', 'a', 2, expiresAtMs));
  await refuse('retention ended, seq 0', appendInput('run', 'a', 0, expiresAtMs + 1));

  // The lease ended at t + 1000, but nobody took the record over: the token still holds.
  assert.equal(await store.append(appendInput('run', 'a', 2, t + 1500)), true, 'lease ended, token held');
  const takeover = await store.claim(claimInput('run', { nowMs: t + 2000, token: 'b', expiresAtMs }));
  assert.equal(takeover.claimed, true);
  await refuse('the token of the holder before a takeover', appendInput('run', 'a', 3, t + 2001));
  assert.equal(await store.append(appendInput('run', 'b', 3, t + 2002)), true, 'the new holder appends');
  assert.deepEqual(
    shown(await store.entries('run')),
    [`0@${t}:run:0`, `1@${t + 1}:run:1`, `2@${t + 1500}:run:2`, `3@${t + 2002}:run:3`],
    'a takeover keeps the journal',
  );

  const result = new Uint8Array([1]);
  assert.equal(await store.complete({ key: 'run', token: 'b', result, nowMs: t + 2003, expiresAtMs }), true);
  await refuse('a completed record', appendInput('run', 'b', 4, t + 2004));
  await refuse('a completed record, seq 0', appendInput('run', 'b', 0, t + 2004));
  assert.equal((await store.entries('run')).length, 4, 'a completed run keeps its journal');
}

/**
 * Appending seq 0 starts the journal afresh: it removes every entry the key had, those of the same
 * run and those an earlier run left when its record expired and the key was claimed anew.
 */
export async function newJournal(context: ScenarioContext): Promise<void> {
  const store = journal(context.store);
  const t = Date.now();
  const expiresAtMs = t + 60_000;
  await store.claim(claimInput('run', { nowMs: t, token: 'a', expiresAtMs }));
  for (const seq of [0, 1, 2]) assert.equal(await store.append(appendInput('run', 'a', seq, t + seq)), true);
  assert.equal(await store.append(appendInput('run', 'a', 0, t + 10, utf8('restart'))), true);
  assert.deepEqual(shown(await store.entries('run')), [`0@${t + 10}:restart`], 'seq 0 again: a journal of one');
  assert.equal(await store.append(appendInput('run', 'a', 1, t + 11)), true, 'seq 1 is free again');

  // The record expires and another caller claims the key: a new run, whose seq 0 clears the old journal.
  const fresh = await store.claim(claimInput('run', { nowMs: expiresAtMs, token: 'b', fingerprint: 'other' }));
  assert.equal(fresh.claimed && !fresh.takeover, true, 'a fresh claim, not a takeover');
  assert.equal(await store.append(appendInput('run', 'b', 0, expiresAtMs + 1, utf8('new'))), true);
  assert.deepEqual(shown(await store.entries('run')), [`0@${expiresAtMs + 1}:new`], 'nothing of the old run is left');
  assert.equal(await store.append(appendInput('run', 'a', 1, expiresAtMs + 2)), false, 'the old token is refused');
  assert.equal(await store.append(appendInput('run', 'b', 1, expiresAtMs + 2)), true);
  assert.equal((await store.entries('run')).length, 2);
}

/** `release` removes the run's entries with its record, and only when it removes the record. */
export async function releaseRemovesEntries(context: ScenarioContext): Promise<void> {
  const store = journal(context.store);
  const t = Date.now();
  await store.claim(claimInput('run', { nowMs: t, token: 'a' }));
  for (const seq of [0, 1, 2]) await store.append(appendInput('run', 'a', seq, t));
  assert.equal(await store.release('run', 'b'), false);
  assert.equal((await store.entries('run')).length, 3, 'a refused release keeps the entries');
  assert.deepEqual(await runsAll(store), ['run']);

  assert.equal(await store.release('run', 'a'), true);
  assert.deepEqual(await store.entries('run'), [], 'released with its record');
  assert.deepEqual(await runsAll(store), [], 'no longer a run');
  await store.claim(claimInput('run', { nowMs: t + 1, token: 'b' }));
  assert.deepEqual(await store.entries('run'), [], 'a new claim of the key finds no entries');
  assert.equal(await store.append(appendInput('run', 'b', 2, t + 2)), true, 'seq 2 is free');
  assert.deepEqual(shown(await store.entries('run')), [`2@${t + 2}:run:2`]);
}

/** `delete` removes a run's entries with its record, whatever its state. */
export async function deleteRemovesEntries(context: ScenarioContext): Promise<void> {
  const store = journal(context.store);
  const t = Date.now();
  for (const key of ['live', 'done', 'kept']) {
    await store.claim(claimInput(key, { nowMs: t, token: 'a' }));
    for (const seq of [0, 1]) await store.append(appendInput(key, 'a', seq, t));
  }
  const result = new Uint8Array([1]);
  await store.complete({ key: 'done', token: 'a', result, nowMs: t, expiresAtMs: t + HOUR_MS });
  assert.equal(await admin(store).delete('live'), true);
  assert.equal(await admin(store).delete('done'), true);
  assert.deepEqual(await store.entries('live'), []);
  assert.deepEqual(await store.entries('done'), []);
  assert.equal((await store.entries('kept')).length, 2, 'another run keeps its entries');
  assert.deepEqual(await runsAll(store), ['kept']);
}

/** `sweep` removes the entries of the records it deletes, and of no other. */
export async function sweepRemovesEntries(context: ScenarioContext): Promise<void> {
  const store = journal(context.store);
  const sweep = admin(store).sweep?.bind(store);
  assert.ok(sweep !== undefined, 'the scenario runs only on a store with sweep');
  const t = Date.now();
  for (const [key, expiresAtMs] of [
    ['short-0', t + 60_000],
    ['short-1', t + 60_000],
    ['long', t + HOUR_MS],
  ] as const) {
    await store.claim(claimInput(key, { nowMs: t, token: 'a', expiresAtMs }));
    for (const seq of [0, 1]) await store.append(appendInput(key, 'a', seq, t));
  }
  assert.equal(await sweep(t + 60_000), 2);
  assert.deepEqual(await store.entries('short-0'), []);
  assert.deepEqual(await store.entries('short-1'), []);
  assert.equal((await store.entries('long')).length, 2);
  assert.deepEqual(await runsAll(store), ['long']);
}

/**
 * `reopen` turns a completed, unexpired record that holds the expected token back into a fresh
 * run: the new token, lease and retention, no result, one more attempt, its creation time and
 * fingerprint kept, and no journal. Any other record stays as it is.
 */
export async function reopenRun(context: ScenarioContext): Promise<void> {
  const store = journal(context.store);
  const t = Date.now();
  const result = new Uint8Array([9]);
  await store.claim(claimInput('run', { nowMs: t, token: 'a', fingerprint: 'fp-run' }));
  for (const seq of [0, 1]) await store.append(appendInput('run', 'a', seq, t));
  await store.complete({ key: 'run', token: 'a', result, nowMs: t + 10, expiresAtMs: t + HOUR_MS });
  await store.claim(claimInput('live', { nowMs: t, token: 'a' }));
  await store.append(appendInput('live', 'a', 0, t));

  const reopening = (over: Partial<ReopenInput>): ReopenInput => ({
    key: 'run',
    expectedToken: 'a',
    token: 'b',
    nowMs: t + 100,
    leaseExpiresAtMs: t + 30_100,
    expiresAtMs: t + 60_100,
    ...over,
  });
  const refuse = async (why: string, input: ReopenInput): Promise<void> => {
    const before = await snapshot(store, input.key);
    assert.equal(await store.reopen(input), false, why);
    assert.deepEqual(await snapshot(store, input.key), before, `${why}: nothing changed`);
  };
  await refuse('another token', reopening({ expectedToken: 'b' }));
  await refuse('no record', reopening({ key: 'none' }));
  await refuse('an in-progress record', reopening({ key: 'live' }));
  await refuse('retention ended (expiresAtMs = nowMs)', reopening({ nowMs: t + HOUR_MS }));

  assert.equal(await store.reopen(reopening({})), true);
  assert.deepEqual(await store.get('run'), {
    key: 'run',
    fingerprint: 'fp-run',
    state: 'in_progress',
    token: 'b',
    leaseExpiresAtMs: t + 30_100,
    // Set, not raised: the reopened run has the retention it was given, even a shorter one.
    expiresAtMs: t + 60_100,
    result: null,
    createdAtMs: t,
    updatedAtMs: t + 100,
    attempts: 2,
  });
  assert.deepEqual(await store.entries('run'), [], 'the journal starts empty');
  assert.deepEqual(await runsAll(store), ['live'], 'without entry 0 it is not a run yet');
  await refuse('the record is in progress again', reopening({ expectedToken: 'b', token: 'c' }));
  assert.equal(await store.append(appendInput('run', 'a', 0, t + 101)), false, 'the old token is refused');
  assert.equal(await store.append(appendInput('run', 'b', 0, t + 101)), true);

  await store.complete({ key: 'run', token: 'b', result, nowMs: t + 200, expiresAtMs: t + HOUR_MS });
  await refuse('the token of the run before', reopening({ token: 'c', nowMs: t + 300 }));
  assert.equal(await store.reopen(reopening({ expectedToken: 'b', token: 'c', nowMs: t + 300 })), true);
  assert.equal((await store.get('run'))?.attempts, 3);
}
