import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import type { ClaimInput } from '../../src/core/store.js';
import { type PgPoolLike, PostgresStore } from '../../src/stores/postgres/index.js';
import { postgresUrl } from './postgres.factory.js';

const HOUR_MS = 3_600_000;
const admin = new pg.Pool({ connectionString: postgresUrl, connectionTimeoutMillis: 5000 });
const tables: string[] = [];
after(async () => {
  for (const table of tables) await admin.query(`DROP TABLE IF EXISTS "${table}_journal", "${table}"`);
  await admin.end();
});

/**
 * A store on a fresh table, over a pool that records the name of every prepared statement it
 * runs, and rejects the first run of the statement named in `failOnce` without sending it.
 */
async function batchStore(failOnce?: string, { lostAnswer = false } = {}) {
  const table = `idem_pgb_${randomBytes(5).toString('hex')}`;
  tables.push(table);
  const names: string[] = [];
  let failing = failOnce;
  const query = (config: string | { name?: string; text: string; values?: unknown[] }, values?: unknown[]) => {
    if (typeof config === 'string') return admin.query(config, values);
    const name = config.name?.match(/^idem_[a-zA-Z]+/)?.[0] ?? '';
    names.push(name);
    if (name === failing) {
      failing = undefined;
      const failure = new Error('injected failure of the batched statement');
      // lostAnswer: the statement runs and commits, only its answer is lost (a client-side timeout).
      return lostAnswer ? admin.query(config).then(() => Promise.reject(failure)) : Promise.reject(failure);
    }
    return admin.query(config);
  };
  const store = new PostgresStore({ pool: { query } as PgPoolLike, table });
  await store.migrate();
  return { store, table, names };
}

function claimInput(key: string, token: string, nowMs: number, fingerprint = 'fp'): ClaimInput {
  return { key, fingerprint, token, nowMs, leaseExpiresAtMs: nowMs + 30_000, expiresAtMs: nowMs + HOUR_MS };
}

/** A result of every byte value 0-255, rotated by `n` so each record's bytes are its own. */
function allBytes(n: number): Uint8Array {
  return Uint8Array.from({ length: 256 + n }, (_, i) => (i + n) % 256);
}

/**
 * Keys in every state a claim meets, set up one call at a time (so through the single path):
 * absent, expired, lease ended (takeover), lease ended under another fingerprint, live, completed.
 */
async function seedStates(store: PostgresStore, nowMs: number): Promise<string[]> {
  const past = (key: string, fingerprint: string, startMs: number, leaseEndMs: number, endMs: number) =>
    store.claim({
      key,
      fingerprint,
      token: `old-${key}`,
      nowMs: startMs,
      leaseExpiresAtMs: leaseEndMs,
      expiresAtMs: endMs,
    });
  await past('expired', 'fp', nowMs - 2 * HOUR_MS, nowMs - 2 * HOUR_MS + 30_000, nowMs - HOUR_MS);
  await past('ended', 'fp', nowMs - 60_000, nowMs - 30_000, nowMs + HOUR_MS);
  await past('ended-other', 'other', nowMs - 60_000, nowMs - 30_000, nowMs + HOUR_MS);
  await past('live', 'fp', nowMs - 1000, nowMs + 30_000, nowMs + HOUR_MS);
  await past('done', 'fp', nowMs - 1000, nowMs + 30_000, nowMs + HOUR_MS);
  await store.complete({ key: 'done', token: 'old-done', result: allBytes(3), nowMs, expiresAtMs: nowMs + HOUR_MS });
  return ['new-a', 'expired', 'ended', 'new-b', 'ended-other', 'live', 'done', 'new-c'];
}

/** The answers of the single path: the same claims on the same states, one at a time. */
async function singleAnswers(nowMs: number) {
  const { store } = await batchStore();
  const keys = await seedStates(store, nowMs);
  const answers = [];
  for (const key of keys) answers.push(await store.claim(claimInput(key, `t-${key}`, nowMs)));
  await store.close();
  return answers;
}

describe('postgres store batching', () => {
  it('gives exactly one of 50 concurrent claims of a new key the record; the others see its token', async () => {
    const { store } = await batchStore();
    const nowMs = Date.now();
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, i) => store.claim(claimInput('hot', `t-${i}`, nowMs))),
    );
    const winners = outcomes.filter((outcome) => outcome.claimed);
    assert.equal(winners.length, 1);
    const token = winners[0]?.record.token;
    for (const outcome of outcomes) {
      assert.equal(outcome.record.state, 'in_progress');
      assert.equal(outcome.record.token, token);
      assert.equal(outcome.record.attempts, 1);
    }
    await store.close();
  });

  it('gives each key one winner when two stores claim the same keys in batches at once', async () => {
    const table = `idem_pgb_${randomBytes(5).toString('hex')}`;
    tables.push(table);
    const stores = [0, 1].map(() => new PostgresStore({ url: postgresUrl, table }));
    await Promise.all(stores.map((store) => store.migrate()));
    const nowMs = Date.now();
    const keys = Array.from({ length: 40 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    // Half the keys hold a lease that has ended: both stores may take them over, one wins.
    for (const key of keys.filter((_, i) => i % 2 === 0)) {
      await stores[0]?.claim({ ...claimInput(key, `old-${key}`, nowMs - 60_000), leaseExpiresAtMs: nowMs - 30_000 });
    }
    // Each store sends its claims in its own batch, in reverse order from the other: the
    // statements lock in key order whatever the order of the calls.
    const [first, second] = await Promise.all(
      stores.map((store, s) =>
        Promise.all(
          (s === 0 ? keys : [...keys].reverse()).map((key) => store.claim(claimInput(key, `s${s}-${key}`, nowMs))),
        ),
      ),
    );
    const bySecond = new Map(second?.map((outcome) => [outcome.record.key, outcome]));
    for (const [i, outcome] of (first ?? []).entries()) {
      const other = bySecond.get(outcome.record.key);
      assert.ok(other, outcome.record.key);
      assert.equal(Number(outcome.claimed) + Number(other.claimed), 1, outcome.record.key);
      assert.equal(outcome.record.token, other.record.token, 'the loser sees the winner');
      assert.equal(outcome.record.attempts, i % 2 === 0 ? 2 : 1);
    }
    await Promise.all(stores.map((store) => store.close()));
  });

  it('claims keys in every state in one statement with the answers of the single path', async () => {
    const nowMs = Date.now();
    const expected = await singleAnswers(nowMs);
    const { store, names } = await batchStore();
    const keys = await seedStates(store, nowMs);
    names.length = 0;
    const answers = await Promise.all(keys.map((key) => store.claim(claimInput(key, `t-${key}`, nowMs))));
    assert.deepEqual(names, ['idem_claimMany'], 'one statement for the whole turn');
    assert.deepEqual(answers, expected);
    const byKey = new Map(keys.map((key, i) => [key, answers[i]]));
    assert.deepEqual(
      keys.filter((key) => byKey.get(key)?.claimed),
      ['new-a', 'expired', 'ended', 'new-b', 'new-c'],
    );
    const ended = byKey.get('ended');
    assert.ok(ended?.claimed);
    assert.equal(ended.takeover, true);
    assert.equal(ended.record.attempts, 2);
    assert.equal(ended.record.createdAtMs, nowMs - 60_000, 'a takeover keeps the creation time');
    const expired = byKey.get('expired');
    assert.ok(expired?.claimed);
    assert.equal(expired.takeover, false);
    assert.equal(expired.record.attempts, 1);
    assert.equal(expired.record.createdAtMs, nowMs);
    assert.deepEqual([...(byKey.get('done')?.record.result ?? [])], [...allBytes(3)]);
    assert.equal(byKey.get('live')?.record.token, 'old-live');
    await store.close();
  });

  it('answers each claim through the single path when the batched claim fails', async () => {
    const nowMs = Date.now();
    const expected = await singleAnswers(nowMs);
    const { store, names } = await batchStore('idem_claimMany');
    const keys = await seedStates(store, nowMs);
    names.length = 0;
    const answers = await Promise.all(keys.map((key) => store.claim(claimInput(key, `t-${key}`, nowMs))));
    assert.deepEqual(names, ['idem_claimMany', ...keys.map(() => 'idem_claim')]);
    assert.deepEqual(answers, expected);
    await store.close();
  });

  it('gives each claim its win when the batched claim committed but its answer was lost', async () => {
    const { store, names } = await batchStore('idem_claimMany', { lostAnswer: true });
    const nowMs = Date.now();
    const keys = Array.from({ length: 8 }, (_, i) => `lost-${i}`);
    const answers = await Promise.all(keys.map((key) => store.claim(claimInput(key, `t-${key}`, nowMs))));
    assert.deepEqual(names, ['idem_claimMany', ...keys.map(() => 'idem_claim')]);
    for (const [i, answer] of answers.entries()) {
      assert.equal(answer.claimed, true, `${keys[i]}: the batch won it for this very claim`);
      assert.equal(answer.record.token, `t-${keys[i]}`);
      assert.equal(answer.record.attempts, 1);
    }
    await store.close();
  });

  it('completes concurrent calls in one statement: only current tokens win, each record keeps its own bytes', async () => {
    const { store, names } = await batchStore();
    const nowMs = Date.now();
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    await Promise.all(keys.map((key) => store.claim(claimInput(key, `t-${key}`, nowMs))));
    names.length = 0;
    const stale = (i: number) => i % 3 === 0;
    const answers = await Promise.all(
      keys.map((key, i) =>
        store.complete({
          key,
          token: stale(i) ? 'stale' : `t-${key}`,
          result: allBytes(i),
          nowMs,
          expiresAtMs: nowMs + HOUR_MS,
        }),
      ),
    );
    assert.deepEqual(
      answers,
      keys.map((_, i) => !stale(i)),
    );
    assert.deepEqual(names, ['idem_completeMany'], 'one statement for the whole turn');
    for (const [i, key] of keys.entries()) {
      const record = await store.get(key);
      assert.equal(record?.state, stale(i) ? 'in_progress' : 'completed', key);
      const bytes = record?.result ? [...record.result] : null;
      assert.deepEqual(bytes, stale(i) ? null : [...allBytes(i)], key);
    }
    await store.close();
  });

  it('answers each completion on its own when the batched statement fails', async () => {
    const { store, names } = await batchStore('idem_completeMany');
    const nowMs = Date.now();
    const keys = ['a', 'b', 'c', 'd'];
    await Promise.all(keys.map((key) => store.claim(claimInput(key, `t-${key}`, nowMs))));
    names.length = 0;
    const answers = await Promise.all(
      keys.map((key) =>
        store.complete({
          key,
          token: key === 'b' ? 'stale' : `t-${key}`,
          result: allBytes(1),
          nowMs,
          expiresAtMs: nowMs + HOUR_MS,
        }),
      ),
    );
    assert.deepEqual(answers, [true, false, true, true]);
    assert.deepEqual(names, ['idem_completeMany', ...keys.map(() => 'idem_complete')]);
    assert.equal((await store.get('b'))?.state, 'in_progress');
    await store.close();
  });

  it("keeps one completion's server-side error its own: the others in its batch still complete", async () => {
    const { store } = await batchStore();
    const nowMs = Date.now();
    const keys = ['a', 'b', 'c'];
    await Promise.all(keys.map((key) => store.claim(claimInput(key, `t-${key}`, nowMs))));
    const outcomes = await Promise.allSettled(
      keys.map((key) =>
        store.complete({
          key,
          token: `t-${key}`,
          result: allBytes(2),
          nowMs,
          // Not an integer: PostgreSQL refuses it as a BIGINT, in the batch and on its own.
          expiresAtMs: key === 'b' ? nowMs + 0.5 : nowMs + HOUR_MS,
        }),
      ),
    );
    assert.deepEqual(
      outcomes.map((outcome) => outcome.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.deepEqual(
      outcomes.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value : 'error')),
      [true, 'error', true],
    );
    assert.equal((await store.get('b'))?.state, 'in_progress');
    await store.close();
  });
});
