import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { afterEach, describe, it } from 'node:test';
import {
  type ConformanceTestApi,
  type ConformanceTestContext,
  runStoreConformance,
  type StoreConformanceOptions,
  StoreScenario,
} from '../../src/testing/index.js';
import { startWorkers } from '../../src/testing/process-scenarios.js';
import { CONFORMANCE_ONLY_ENV } from '../../src/testing/store-conformance.js';

/** The store suite as a table: run one scenario alone, skip with reasons, and skip what a store lacks. */

interface Registered {
  name: string;
  skip: string | boolean | undefined;
  fn: (context?: ConformanceTestContext) => Promise<void>;
}

/** Runs `runStoreConformance` on a test runner that only records what it was given. */
function register(options: Omit<StoreConformanceOptions, 'name' | 'factoryModule' | 'test'> = {}): Registered[] {
  const registered: Registered[] = [];
  const test: ConformanceTestApi = {
    describe: (_name, fn) => fn(),
    it: (name, { skip }, fn) => registered.push({ name, skip, fn }),
  };
  runStoreConformance({ name: 'hot-path', factoryModule: hotPathFactory, test, ...options });
  return registered;
}

const hotPathFactory = new URL('./fixtures/hot-path.factory.ts', import.meta.url).href;

describe('runStoreConformance', () => {
  const saved = process.env[CONFORMANCE_ONLY_ENV];
  afterEach(() => {
    if (saved === undefined) delete process.env[CONFORMANCE_ONLY_ENV];
    else process.env[CONFORMANCE_ONLY_ENV] = saved;
  });

  it('registers one test per scenario of the table, titled by its name', () => {
    delete process.env[CONFORMANCE_ONLY_ENV];
    const registered = register();
    assert.equal(registered.length, Object.keys(StoreScenario).length);
    assert.ok(registered[0]?.name.startsWith(`${StoreScenario.cycle}: `));
  });

  it('runs only the scenarios named by `only`, and by IDEM_CONFORMANCE_ONLY as well when it is set', () => {
    delete process.env[CONFORMANCE_ONLY_ENV];
    assert.deepEqual(
      register({ only: ['close', 'cycle'] }).map((test) => test.name.split(':')[0]),
      [StoreScenario.cycle, StoreScenario.close],
    );
    process.env[CONFORMANCE_ONLY_ENV] = 'takeover, close';
    assert.deepEqual(
      register().map((test) => test.name.split(':')[0]),
      [StoreScenario.takeover, StoreScenario.close],
    );
    assert.deepEqual(
      register({ only: ['close', 'cycle'] }).map((test) => test.name.split(':')[0]),
      [StoreScenario.close],
    );
    process.env[CONFORMANCE_ONLY_ENV] = '';
    assert.equal(register().length, Object.keys(StoreScenario).length, 'an empty variable selects nothing out');
  });

  it('refuses a scenario name it does not know, listing the names it does', () => {
    delete process.env[CONFORMANCE_ONLY_ENV];
    const unknown = /names "claim-race", which is no scenario; use one of cycle, release/;
    assert.throws(() => register({ only: ['claim-race' as StoreScenario] }), unknown);
    assert.throws(() => register({ skip: { ['claim-race' as StoreScenario]: 'why' } }), unknown);
    process.env[CONFORMANCE_ONLY_ENV] = 'claim-race';
    assert.throws(() => register(), /IDEM_CONFORMANCE_ONLY names "claim-race"/);
  });

  it('passes each skip reason to the runner', () => {
    delete process.env[CONFORMANCE_ONLY_ENV];
    const registered = register({ skip: { crash: 'in-process only' } });
    const crash = registered.find((test) => test.name.startsWith(StoreScenario.crash));
    assert.equal(crash?.skip, 'in-process only');
    assert.equal(registered.find((test) => test.name.startsWith(StoreScenario.cycle))?.skip, false);
  });

  it('skips, saying why, a scenario that needs what the store does not have, and runs the rest', async () => {
    delete process.env[CONFORMANCE_ONLY_ENV];
    const registered = register({ only: ['list', 'sweep', 'ping', 'journal', 'journalDelete', 'cycle', 'close'] });
    const reasons = new Map<string, string | undefined>();
    for (const test of registered) {
      await test.fn({ skip: (message) => reasons.set(test.name.split(':')[0] as string, message) });
    }
    assert.match(reasons.get(StoreScenario.list) ?? '', /hot-path store is not an AdminStore/);
    assert.match(reasons.get(StoreScenario.sweep) ?? '', /not an AdminStore/);
    assert.match(reasons.get(StoreScenario.ping) ?? '', /has no ping\(\)/);
    assert.match(reasons.get(StoreScenario.journal) ?? '', /hot-path store is not a JournalStore/);
    assert.match(reasons.get(StoreScenario.journalDelete) ?? '', /not a JournalStore/, 'the first need it lacks');
    assert.equal(reasons.has(StoreScenario.cycle), false, 'a hot-path scenario runs');
    assert.equal(reasons.has(StoreScenario.close), false);
  });
});

describe('startWorkers (the multi-process scenarios)', () => {
  /** A real process that would wait for ever, as a worker waits for `go`. */
  function waiting(spawned: ChildProcess[]) {
    return async () => {
      const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      spawned.push(child);
      return { process: child };
    };
  }
  function exitSignal(child: ChildProcess): Promise<NodeJS.Signals | null> {
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.signalCode);
    return new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  }

  it('gives every worker back, in order, when all start', async () => {
    const spawned: ChildProcess[] = [];
    const workers = await startWorkers([waiting(spawned), waiting(spawned)]);
    try {
      assert.deepEqual(
        workers.map((worker) => worker.process.pid),
        spawned.map((child) => child.pid),
      );
      assert.ok(spawned.every((child) => child.exitCode === null && child.signalCode === null));
    } finally {
      for (const child of spawned) child.kill('SIGKILL');
    }
  });

  // A bound, not a measure: were the workers left running, the test would otherwise wait for ever.
  it('kills the workers that started when one fails to, so none is left waiting for go', {
    timeout: 30_000,
  }, async () => {
    const spawned: ChildProcess[] = [];
    const failing = async () => {
      throw new Error('worker exited early: SQLITE_BUSY');
    };
    await assert.rejects(
      startWorkers([waiting(spawned), failing, waiting(spawned)]),
      /worker exited early: SQLITE_BUSY/,
    );
    assert.equal(spawned.length, 2);
    assert.deepEqual(await Promise.all(spawned.map(exitSignal)), ['SIGKILL', 'SIGKILL']);
  });
});
