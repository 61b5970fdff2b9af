import { randomBytes } from 'node:crypto';
import * as nodeTest from 'node:test';
import type { OutboxConformanceTarget, OutboxScenarioContext, OutboxScenarioCounts } from './outbox-inputs.js';
import {
  concurrentPassesShare,
  killedRelayLeavesPending,
  lockedKeyBlocksSuccessor,
  processesShare,
} from './outbox-race-scenarios.js';
import {
  badInputRefused,
  badRelayRefused,
  cleanupPublishedOnly,
  closedRefuses,
  committedIsRelayed,
  deadAndRevived,
  duplicateIdIsNoOp,
  failureRetriesLater,
  notBeforeIsKept,
  oldestFirst,
  payloadEncodings,
  perKeyOrder,
  publishThrowsLeavesPending,
  rolledBackNeverIs,
} from './outbox-scenarios.js';
import type { ConformanceTestApi } from './store-conformance.js';

export type { OutboxConformanceTarget, OutboxScenarioCounts } from './outbox-inputs.js';

/** The scenarios of the outbox conformance suite, by name: skip one, or run only some. */
export const OutboxScenario = {
  committed: 'committed',
  rolledBack: 'rolledBack',
  duplicate: 'duplicate',
  encodings: 'encodings',
  oldestFirst: 'oldestFirst',
  notBefore: 'notBefore',
  retry: 'retry',
  dead: 'dead',
  keyOrder: 'keyOrder',
  keyLocked: 'keyLocked',
  concurrentPasses: 'concurrentPasses',
  processes: 'processes',
  publishThrows: 'publishThrows',
  killed: 'killed',
  cleanup: 'cleanup',
  badInput: 'badInput',
  badRelay: 'badRelay',
  closed: 'closed',
} as const;
export type OutboxScenario = (typeof OutboxScenario)[keyof typeof OutboxScenario];

type Entry = { title: string; run: (context: OutboxScenarioContext) => Promise<void> };

const scenarios: Record<OutboxScenario, Entry> = {
  committed: {
    title: 'a message enqueued in a committed transaction is relayed once, as written',
    run: committedIsRelayed,
  },
  rolledBack: { title: 'a message enqueued in a rolled-back transaction never is', run: rolledBackNeverIs },
  duplicate: { title: 'enqueuing an id already in the outbox is a no-op that returns the id', run: duplicateIdIsNoOp },
  encodings: { title: 'strings, bytes and JSON payloads come back as their bytes', run: payloadEncodings },
  oldestFirst: { title: 'a pass publishes up to its limit, oldest first, and marks them', run: oldestFirst },
  notBefore: { title: 'a message is not published before its notBeforeMs', run: notBeforeIsKept },
  retry: { title: 'a failed publish is retried at retryAtMs and not before', run: failureRetriesLater },
  dead: { title: 'retryAtMs answering undefined makes the message dead, listed, and revivable', run: deadAndRevived },
  keyOrder: { title: "a key's messages go one at a time, in order, behind a retrying one", run: perKeyOrder },
  keyLocked: { title: "a key's next message waits while another pass holds its first", run: lockedKeyBlocksSuccessor },
  concurrentPasses: {
    title: 'concurrent passes never publish one message at once, and together publish all once',
    run: concurrentPassesShare,
  },
  processes: {
    title: 'relays in several processes never publish one message at once, and together publish all once',
    run: processesShare,
  },
  publishThrows: {
    title: 'a publish that throws leaves its messages pending, published again with the same ids',
    run: publishThrowsLeavesPending,
  },
  killed: {
    title: 'a relay killed mid-pass leaves its messages pending, published again with the same ids',
    run: killedRelayLeavesPending,
  },
  cleanup: { title: 'cleanup deletes only published messages older than the cutoff', run: cleanupPublishedOnly },
  badInput: { title: 'a bad message is refused with INVALID_OPTIONS and nothing is written', run: badInputRefused },
  badRelay: {
    title: 'a bad relay pass is refused, and a wrong publish answer leaves messages pending',
    run: badRelayRefused,
  },
  closed: { title: 'after close() every operation refuses with STORE_CLOSED', run: closedRefuses },
};

export interface OutboxConformanceOptions {
  /**
   * Export name of the factory in the module: `(table: string) => Promise<OutboxConformanceTarget>`,
   * an outbox on an empty table of that name (letters, digits and underscores, at most 30). Default
   * `createOutbox`.
   */
  createExport?: string;
  /** Export name of `(table: string) => Promise<void>`, which drops the table. Default `dropOutbox`; skipped when absent. */
  dropExport?: string;
  /** Scenarios to skip, each with the reason (shown in the test report). */
  skip?: Partial<Record<OutboxScenario, string>>;
  /** Run only these scenarios. Default: all. */
  only?: readonly OutboxScenario[];
  /** Relay processes (and concurrent passes) in the race scenarios. Default 3. */
  processes?: number;
  /** Messages they share. Default 150. */
  messages?: number;
  /** The test runner. Default `node:test`. */
  test?: ConformanceTestApi;
}

/**
 * Registers the outbox conformance suite: the scenarios every Idem outbox (PostgreSQL, SQLite,
 * MySQL) passes against its real database, for an `OutboxStore` you write yourself.
 * `factoryModule` is the URL of a module exporting `createOutbox(table)` (an
 * `OutboxConformanceTarget`: the outbox, and a way to run a transaction of its database) and
 * optionally `dropOutbox(table)`; child processes import it too, so it must build the target itself.
 *
 * @example
 * ```ts
 * // test/my-outbox.test.ts, with my-outbox.factory.ts exporting createOutbox(table)
 * import { runOutboxConformance } from 'idem/testing';
 * runOutboxConformance('my-outbox', new URL('./my-outbox.factory.js', import.meta.url).href);
 * ```
 */
export function runOutboxConformance(
  name: string,
  factoryModule: string,
  options: OutboxConformanceOptions = {},
): void {
  const api = options.test ?? (nodeTest as unknown as ConformanceTestApi);
  const createExport = options.createExport ?? 'createOutbox';
  const counts: OutboxScenarioCounts = { processes: options.processes ?? 3, messages: options.messages ?? 150 };
  for (const id of [...Object.keys(options.skip ?? {}), ...(options.only ?? [])]) {
    if (!Object.hasOwn(scenarios, id)) {
      throw new Error(
        `[idem] runOutboxConformance: no scenario ${JSON.stringify(id)}; use one of ${Object.keys(scenarios).join(', ')}.`,
      );
    }
  }
  const load = async () => {
    const mod = (await import(factoryModule)) as Record<string, unknown>;
    const create = mod[createExport];
    if (typeof create !== 'function') throw new Error(`${factoryModule} must export ${createExport}(table)`);
    const drop = mod[options.dropExport ?? 'dropOutbox'];
    return {
      create: create as (table: string) => Promise<OutboxConformanceTarget>,
      drop: typeof drop === 'function' ? (drop as (table: string) => Promise<void>) : undefined,
    };
  };

  api.describe(`outbox conformance: ${name}`, () => {
    for (const [id, entry] of Object.entries(scenarios) as [OutboxScenario, Entry][]) {
      if (options.only !== undefined && !options.only.includes(id)) continue;
      api.it(`${id}: ${entry.title}`, { skip: options.skip?.[id] ?? false, timeout: 120_000 }, async () => {
        const { create, drop } = await load();
        const table = `ob_${randomBytes(6).toString('hex')}`;
        const target = await create(table);
        try {
          await entry.run({
            target,
            outbox: target.outbox,
            table,
            job: { factoryModule, createExport, table },
            counts,
          });
        } finally {
          await target.close();
          await drop?.(table);
        }
      });
    }
  });
}
