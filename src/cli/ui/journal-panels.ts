/**
 * The dashboard's workflow and notification panels: both read the journals of the store (the
 * same records `idem workflows list` and `idem notifications log` read). A store without
 * journals (DynamoDB, a custom store) has neither, and the page hides the panels.
 */
import { isJournalStore, type JournalStore } from '../../core/journal.js';
import type { AdminStore } from '../../core/store.js';
import { Notifier } from '../../notify/notifier.js';
import { type StepView, Workflows } from '../../workflow/index.js';
import { encryptionKeysFromEnv } from '../encryption-env.js';
import { jsonText } from '../workflows/run-format.js';

/** Runs read per page: each costs two store reads (its record and its journal). */
const RUN_PAGE = 50;

export interface Page<T> {
  items: T[];
  nextCursor: string | undefined;
}

/** Workflow runs and the notification log of one store, when it keeps journals. */
export class JournalPanels {
  readonly #store: JournalStore | undefined;
  #workflows: Workflows | undefined;
  #notifier: Notifier | undefined;

  constructor(store: AdminStore) {
    this.#store = isJournalStore(store) ? store : undefined;
  }

  /** Whether the panels have anything to show; the note says why not. */
  get available(): boolean {
    return this.#store !== undefined;
  }

  /** A page of runs, each with its steps (times in ms, values as short JSON text). */
  async runs(limit: number, cursor: string | undefined): Promise<Page<Record<string, unknown>>> {
    const page = await this.#workflowsOf().list({
      limit: Math.min(limit, RUN_PAGE),
      ...(cursor === undefined ? {} : { cursor }),
    });
    const items = page.runs.map((run) => ({
      id: run.id,
      workflow: `${run.name}@${run.version}`,
      state: run.state,
      attempts: run.attempts,
      createdAtMs: run.createdAtMs,
      updatedAtMs: run.updatedAtMs,
      ...(run.error === undefined ? {} : { error: `${run.error.name}: ${run.error.message}` }),
      steps: run.steps.map(stepJson),
    }));
    return { items, nextCursor: page.nextCursor };
  }

  /** A page of the notification log, as `idem notifications log --json` prints it. */
  async notifications(limit: number, cursor: string | undefined): Promise<Page<Record<string, unknown>>> {
    const page = await this.#notifierOf().log({ limit, ...(cursor === undefined ? {} : { cursor }) });
    return { items: page.entries.map((entry) => ({ ...entry })), nextCursor: page.nextCursor };
  }

  #workflowsOf(): Workflows {
    this.#workflows ??= new Workflows({ store: this.#journal(), ...keys() });
    return this.#workflows;
  }

  #notifierOf(): Notifier {
    this.#notifier ??= new Notifier({ store: this.#journal(), ...keys() });
    return this.#notifier;
  }

  #journal(): JournalStore {
    if (this.#store === undefined) throw new Error('this store keeps no journals');
    return this.#store;
  }
}

/** A step for the timeline: its times in ms, its value as short JSON text. */
function stepJson(step: StepView): Record<string, unknown> {
  return {
    position: step.position,
    name: step.name,
    kind: step.kind,
    state: step.state,
    attempts: step.attempts,
    ...(step.startedAtMs === undefined ? {} : { startedAtMs: step.startedAtMs }),
    ...(step.endedAtMs === undefined ? {} : { endedAtMs: step.endedAtMs }),
    ...(step.wakeAtMs === undefined ? {} : { wakeAtMs: step.wakeAtMs }),
    ...(step.error === undefined ? {} : { error: `${step.error.name}: ${step.error.message}` }),
    ...(step.state === 'done' && step.value !== undefined ? { value: clip(jsonText(step.value)) } : {}),
  };
}

/** The keys journals were sealed with (IDEM_ENCRYPTION_KEY): without them, sealed values stay sealed. */
function keys() {
  const encryptionKey = encryptionKeysFromEnv();
  return encryptionKey === undefined ? {} : { encryptionKey };
}

function clip(text: string): string {
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}
