import { randomBytes } from 'node:crypto';
import * as nodeTest from 'node:test';
import { isJournalStore } from '../core/journal.js';
import { isAdminStore, type Store } from '../core/store.js';
import type { ScenarioCounts } from './conformance-inputs.js';
import { type ScenarioEntry, type ScenarioNeed, StoreScenario, storeScenarios } from './store-scenarios.js';

export { StoreScenario };

/** The environment variable that runs only some scenarios: names separated by commas, e.g. `cycle,close`. */
export const CONFORMANCE_ONLY_ENV = 'IDEM_CONFORMANCE_ONLY';

/** What the suite may call on a test's context: `node:test`'s `skip`, when the store lacks what a scenario needs. */
export interface ConformanceTestContext {
  skip?(message?: string): void;
}

/** The part of a test runner the suite uses; `node:test` by default. */
export interface ConformanceTestApi {
  describe(name: string, fn: () => void): unknown;
  it(
    name: string,
    options: { skip?: string | boolean; timeout?: number },
    fn: (context?: ConformanceTestContext) => Promise<void>,
  ): unknown;
}

export interface StoreConformanceOptions {
  /** Name shown in the test titles, e.g. `postgres`. */
  name: string;
  /**
   * URL or absolute path of a module that exports `createStore(namespace)` (an empty store
   * isolated by `namespace`, a string of `[a-z0-9_]`, at most 40 characters) and, optionally,
   * `dropStore(namespace)`. Child processes import it too, so it must build the store itself.
   */
  factoryModule: string;
  /** Export name of the factory. Default `createStore`. */
  createExport?: string;
  /** Export name of the clean-up function. Default `dropStore`; skipped when absent. */
  dropExport?: string;
  /** Scenarios to skip, each with the reason (shown in the test report). */
  skip?: Partial<Record<StoreScenario, string>>;
  /**
   * Run only these scenarios (and, when `IDEM_CONFORMANCE_ONLY` is set, only those it names
   * too). Default: every scenario.
   */
  only?: readonly StoreScenario[];
  /** Processes in the cross-process races (claims, and journal appends). Default 4. */
  processes?: number;
  /** Keys each process races for, and entries each appends in the journal race. Default 50. */
  claimsPerProcess?: number;
  /** Concurrent claims on one key in one process, and concurrent appends of one seq. Default 200. */
  concurrentClaims?: number;
  /** The test runner. Default `node:test`. */
  test?: ConformanceTestApi;
}

type Factory = {
  create: (namespace: string) => Promise<Store>;
  drop: ((namespace: string) => Promise<void>) | undefined;
};

/**
 * Registers the store conformance suite with the test runner: the same scenarios every Idem
 * store passes, against your real server. Use it to check a store you write yourself. Each
 * scenario is an entry of a table (`StoreScenario` names them): skip one with a reason, or run
 * only some with `only` or the environment variable `IDEM_CONFORMANCE_ONLY=cycle,close`. A
 * scenario that needs what your store does not have (`list` and `delete` of an `AdminStore`,
 * `sweep`, `ping`, `getMany`, the journal of a `JournalStore`) is skipped, saying so.
 *
 * @example
 * ```ts
 * // test/my-store.test.ts, with my-store.factory.ts exporting createStore(namespace)
 * import { runStoreConformance } from 'idem/testing';
 * runStoreConformance({ name: 'my-store', factoryModule: new URL('./my-store.factory.js', import.meta.url).href });
 * ```
 */
export function runStoreConformance(options: StoreConformanceOptions): void {
  const api: ConformanceTestApi = options.test ?? (nodeTest as unknown as ConformanceTestApi);
  for (const name of Object.keys(options.skip ?? {})) known(name, 'skip');
  const selected = selection(options.only, process.env[CONFORMANCE_ONLY_ENV]);
  const counts: ScenarioCounts = {
    processes: options.processes ?? 4,
    claimsPerProcess: options.claimsPerProcess ?? 50,
    concurrentClaims: options.concurrentClaims ?? 200,
  };
  const job = { factoryModule: options.factoryModule, createExport: options.createExport ?? 'createStore' };

  let factory: Factory | undefined;
  const load = async (): Promise<Factory> => {
    if (factory !== undefined) return factory;
    const mod = (await import(options.factoryModule)) as Record<string, unknown>;
    const create = mod[job.createExport];
    if (typeof create !== 'function') {
      throw new Error(`${options.factoryModule} must export ${job.createExport}(namespace)`);
    }
    const drop = mod[options.dropExport ?? 'dropStore'];
    factory = {
      create: create as Factory['create'],
      drop: typeof drop === 'function' ? (drop as Factory['drop']) : undefined,
    };
    return factory;
  };

  /** Runs `entry` on a fresh store in a fresh namespace, then closes and drops it. */
  const runOne = async (entry: ScenarioEntry, context?: ConformanceTestContext): Promise<void> => {
    const { create, drop } = await load();
    const namespace = `c_${randomBytes(6).toString('hex')}`;
    const store = await create(namespace);
    try {
      const missing = entry.needs === undefined ? undefined : lacks(store, entry.needs);
      if (missing !== undefined) {
        context?.skip?.(missing);
        return;
      }
      await entry.run({ store, namespace, job: { ...job, namespace }, counts });
    } finally {
      await store.close();
      await drop?.(namespace);
    }
  };

  api.describe(`store conformance: ${options.name}`, () => {
    for (const [id, entry] of Object.entries(storeScenarios) as [StoreScenario, ScenarioEntry][]) {
      if (selected !== undefined && !selected.has(id)) continue;
      const title = typeof entry.title === 'string' ? entry.title : entry.title(counts);
      const skip = options.skip?.[id] ?? false;
      api.it(`${entry.name}: ${title}`, { skip, timeout: 120_000 }, (context) => runOne(entry, context));
    }
  });
}

/** Why `store` cannot run a scenario that needs `needs`, or `undefined` when it can. */
function lacks(store: Store, needs: ScenarioNeed | readonly ScenarioNeed[]): string | undefined {
  for (const need of typeof needs === 'string' ? [needs] : needs) {
    const missing = lacksOne(store, need);
    if (missing !== undefined) return missing;
  }
  return undefined;
}

function lacksOne(store: Store, need: ScenarioNeed): string | undefined {
  if (need === 'ping') return store.ping === undefined ? `the ${store.name} store has no ping()` : undefined;
  if (need === 'getMany') {
    return store.getMany === undefined
      ? `the ${store.name} store has no getMany() (optional): getMany from idem/store-kit reads its keys with get`
      : undefined;
  }
  if (need === 'journal') {
    return isJournalStore(store)
      ? undefined
      : `the ${store.name} store is not a JournalStore (no append(), entries(), reopen() and runs())`;
  }
  if (!isAdminStore(store)) return `the ${store.name} store is not an AdminStore (no list() and delete())`;
  if (need === 'sweep' && store.sweep === undefined) {
    return `the ${store.name} store has no sweep(): its backend drops expired records itself`;
  }
  return undefined;
}

/** The scenarios both `only` and the environment variable name, or `undefined` to run all. */
function selection(only: readonly string[] | undefined, fromEnv: string | undefined): Set<string> | undefined {
  const named = fromEnv?.split(/[\s,]+/).filter((name) => name !== '');
  const lists = [only, named?.length ? named : undefined].filter((list) => list !== undefined);
  if (lists.length === 0) return undefined;
  for (const name of lists.flat()) known(name, only?.includes(name) ? 'only' : CONFORMANCE_ONLY_ENV);
  return new Set(lists.flat().filter((name) => lists.every((list) => list.includes(name))));
}

function known(name: string, where: string): void {
  if (!Object.hasOwn(storeScenarios, name)) {
    throw new Error(
      `[idem] runStoreConformance: ${where} names ${JSON.stringify(name)}, which is no scenario; use one of ${Object.keys(storeScenarios).join(', ')}.`,
    );
  }
}
