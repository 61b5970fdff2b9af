/**
 * The table of the store conformance suite: one named entry per scenario, in the order they run.
 * The name is what `skip` and `only` (or `IDEM_CONFORMANCE_ONLY`) take. Each entry points at its
 * body in a file of its topic, and says what it needs beyond the hot path, so a store without
 * it is skipped with the reason rather than failed.
 */
import { listing, listLimits, remove, sweeping } from './admin-scenarios.js';
import {
  claimCompleteReplay,
  concurrentClaims,
  fingerprintMismatch,
  keyIsolation,
  leaseTakeover,
  releaseAndRetry,
  staleTokens,
} from './claim-scenarios.js';
import type { ScenarioContext, ScenarioCounts } from './conformance-inputs.js';
import { getManyScenarios } from './get-many-scenarios.js';
import { concurrentAppends, dueRuns, journalsAcrossProcesses, runLimits, runPaging } from './journal-run-scenarios.js';
import {
  appendAndEntries,
  appendFencing,
  deleteRemovesEntries,
  newJournal,
  releaseRemovesEntries,
  reopenRun,
  sweepRemovesEntries,
} from './journal-scenarios.js';
import { extendKeepsRetention, lostCompletionAbortsSignal } from './lease-scenarios.js';
import { closeRefusesEverything, pingThenClose } from './lifecycle-scenarios.js';
import { killHolderMidLease, raceAcrossProcesses } from './process-scenarios.js';
import { binaryResults, resultCapacity, retentionExpiry, textSizes } from './record-scenarios.js';

/**
 * What a scenario needs besides the hot path: `admin` (`delete` and `list`: an `AdminStore`),
 * `sweep` (an `AdminStore` with `sweep`), `ping`, `journal` (`append`, `entries`, `reopen` and
 * `runs`: a `JournalStore`), `getMany` (the optional batch read).
 */
export type ScenarioNeed = 'admin' | 'sweep' | 'ping' | 'journal' | 'getMany';

export interface ScenarioEntry {
  /** A few words, shown first in the test's title. */
  name: string;
  /** What it checks, as a sentence; a function when it names the counts in the options. */
  title: string | ((counts: ScenarioCounts) => string);
  /** What the store must have besides the hot path (one need, or all of several); skipped, saying so, when it does not. */
  needs?: ScenarioNeed | readonly ScenarioNeed[];
  /** The scenario, on a fresh and empty store; it throws (an assertion) when the store breaks the contract. */
  run(context: ScenarioContext): Promise<void>;
}

export const storeScenarios = {
  cycle: {
    name: 'claim, complete and replay',
    title: 'one claim wins, a second sees it in progress, complete stores the result, a third replays it',
    run: claimCompleteReplay,
  },
  release: {
    name: 'release and retry',
    title: 'a released key can be claimed again from scratch',
    run: releaseAndRetry,
  },
  mismatch: {
    name: 'fingerprint mismatch',
    title: 'another fingerprint never claims the key, not even after its lease ends',
    run: fingerprintMismatch,
  },
  isolation: {
    name: 'key isolation',
    title: 'keys that share a prefix or differ in case are separate records',
    run: keyIsolation,
  },
  sizes: {
    name: 'key, fingerprint and token sizes',
    title: 'the longest allowed (255 UTF-8 bytes, any characters) are kept byte for byte',
    run: textSizes,
  },
  takeover: {
    name: 'lease expiry and takeover',
    title: 'after the lease ends one caller takes over; the old holder can no longer complete',
    run: leaseTakeover,
  },
  staleToken: {
    name: 'stale tokens',
    title: 'complete, release and extend are refused with a stale token and leave the record untouched',
    run: staleTokens,
  },
  extendRetention: {
    name: 'lease extension and retention',
    title: 'an extended lease keeps its record past the retention it was claimed with; no rival claims it',
    run: extendKeepsRetention,
  },
  lostSignal: {
    name: 'a refused completion',
    title: 'a holder whose completion is refused (heartbeat off) sees LEASE_LOST and its signal aborted',
    run: lostCompletionAbortsSignal,
  },
  retention: {
    name: 'retention expiry',
    title: 'an expired record is hidden and replaced by a fresh claim',
    run: retentionExpiry,
  },
  binary: {
    name: 'binary results',
    title: 'every byte value, and an empty result, round-trip exactly',
    run: binaryResults,
  },
  capacity: {
    name: 'result capacity',
    title: "a result of exactly the store's maxResultBytes (1 MiB when it declares none) round-trips",
    run: resultCapacity,
  },
  list: {
    name: 'listing',
    title: 'pages through every record, filters by state and expiry, and ends on the last page',
    needs: 'admin',
    run: listing,
  },
  listLimit: {
    name: 'list limits',
    title: 'limit is a whole number from 1 to 1000, 100 by default; anything else is INVALID_OPTIONS',
    needs: 'admin',
    run: listLimits,
  },
  remove: { name: 'delete', title: 'delete removes a record whatever its state, once', needs: 'admin', run: remove },
  sweep: {
    name: 'sweep',
    title: 'sweep deletes only expired records, at most limit at a time',
    needs: 'sweep',
    run: sweeping,
  },
  ...getManyScenarios,
  concurrent: {
    name: 'concurrent claims in one process',
    title: ({ concurrentClaims }) => `${concurrentClaims} concurrent claims of one key have exactly one winner`,
    run: concurrentClaims,
  },
  processes: {
    name: 'claims racing across processes',
    title: ({ processes, claimsPerProcess }) =>
      `${processes} processes racing for ${claimsPerProcess} keys: each key has exactly one winner`,
    run: raceAcrossProcesses,
  },
  crash: {
    name: 'a holder killed with SIGKILL',
    title: 'a holder killed mid-lease blocks the key until its lease ends, then one caller takes over',
    run: killHolderMidLease,
  },
  journal: {
    name: 'journal entries',
    title:
      "entries come back in seq order with their append's time and exact bytes: none, every byte value, the store's capacity",
    needs: 'journal',
    run: appendAndEntries,
  },
  journalFencing: {
    name: 'journal fencing',
    title:
      'append writes only under the holding token, in progress and unexpired, to a free seq; a refusal changes nothing',
    needs: 'journal',
    run: appendFencing,
  },
  journalRestart: {
    name: 'a new journal',
    title: "appending seq 0 removes every entry the key had, the same run's or an expired earlier run's",
    needs: 'journal',
    run: newJournal,
  },
  journalRelease: {
    name: 'journal and release',
    title: 'release removes the entries with the record, and a refused release keeps them',
    needs: 'journal',
    run: releaseRemovesEntries,
  },
  journalDelete: {
    name: 'journal and delete',
    title: 'delete removes the entries with the record, whatever its state',
    needs: ['journal', 'admin'],
    run: deleteRemovesEntries,
  },
  journalSweep: {
    name: 'journal and sweep',
    title: 'sweep removes the entries of the records it deletes, and of no other',
    needs: ['journal', 'sweep'],
    run: sweepRemovesEntries,
  },
  reopen: {
    name: 'reopen',
    title:
      'a completed, unexpired run with the expected token becomes a fresh run without a journal; nothing else does',
    needs: 'journal',
    run: reopenRun,
  },
  runs: {
    name: 'runs',
    title: 'pages through every record with an entry 0, and through nothing else',
    needs: 'journal',
    run: runPaging,
  },
  runLimits: {
    name: 'runs limits',
    title: 'limit is a whole number from 1 to 1000, 100 by default; anything else is INVALID_OPTIONS',
    needs: 'journal',
    run: runLimits,
  },
  dueRuns: {
    name: 'due runs',
    title: 'dueBy keeps only in-progress runs whose lease ended and whose retention did not',
    needs: 'journal',
    run: dueRuns,
  },
  concurrentAppends: {
    name: 'concurrent appends in one process',
    title: ({ concurrentClaims }) =>
      `${concurrentClaims} concurrent appends of one seq write exactly one; runs appended at once keep their own entries`,
    needs: 'journal',
    run: concurrentAppends,
  },
  journalProcesses: {
    name: 'journals across processes',
    title: ({ processes, claimsPerProcess }) =>
      `${processes} processes append ${claimsPerProcess} entries each to their own runs and race for a shared one: each seq written once`,
    needs: 'journal',
    run: journalsAcrossProcesses,
  },
  ping: {
    name: 'ping',
    title: 'ping resolves on a working store and is refused after close',
    needs: 'ping',
    run: pingThenClose,
  },
  close: {
    name: 'close',
    title: 'close can be called twice, and every operation after it is refused with STORE_CLOSED',
    run: closeRefusesEverything,
  },
} satisfies Record<string, ScenarioEntry>;

/** The name of a scenario, as `skip` and `only` take it. */
export type StoreScenario = keyof typeof storeScenarios;

/** Every scenario's name, with its few words: `StoreScenario.cycle` is `'claim, complete and replay'`. */
export const StoreScenario = Object.fromEntries(
  Object.entries(storeScenarios).map(([id, entry]) => [id, entry.name]),
) as Record<StoreScenario, string>;
