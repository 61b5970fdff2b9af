import { Workflows } from '../../src/workflow/index.js';
import { describe } from '../store-targets.js';
import type { IdemStore } from './databases.js';
import { STEPS, type WorkflowVariant, type Workload, type WorkloadName } from './variants.js';

/** The Idem runtime on one database: its variants of each workload. */
export interface IdemWorkflows {
  /** `idem` for every workload, and `idem tx` for one whose steps can be atomic (the writes). */
  variants(workload: WorkloadName): WorkflowVariant[];
  /** Closes the store. */
  close(): Promise<void>;
}

export interface IdemVariantOptions {
  /** The journal store the runs are recorded in; closed by `close()`, or at once when it cannot be migrated. */
  store: IdemStore;
  workloads: Workload[];
}

/**
 * (d) Idem workflows: each workload defined once with `workflows.define` and each run
 * `definition.run(runId, input)`: start, run every step in this process, complete.
 * - `idem`: the steps are `ctx.step` calls (the writing steps insert through the business pool
 *   every variant shares); each step's value is then appended to the run's journal.
 * - `idem tx` (writes only): the steps are `ctx.transaction(name, steps, fn)` calls on a step
 *   database over the business database, so each INSERT commits in one transaction with the
 *   step's row there; the step's value is then appended to the journal as for `idem`.
 * Resolves `{ skipped }` with the reason when the store cannot be migrated, so the benchmark still
 * runs the other variants.
 */
export async function idemWorkflowVariant(options: IdemVariantOptions): Promise<IdemWorkflows | { skipped: string }> {
  const { store } = options;
  try {
    await store.migrate();
  } catch (error) {
    await store.close().catch(() => {});
    return { skipped: `the Idem store refused to migrate: ${describe(error)}` };
  }
  const workflows = new Workflows({ store });
  const variants = new Map<WorkloadName, WorkflowVariant[]>();
  for (const workload of options.workloads) {
    const steps = workflows.define(
      `bench-${workload.name}`,
      async (ctx, input: { runId: string }) => {
        for (let step = 0; step < STEPS; step++) {
          await ctx.step(`step-${step}`, () => workload.step(input.runId, step));
        }
        return STEPS;
      },
      { version: 1 },
    );
    const list: WorkflowVariant[] = [
      {
        name: 'idem',
        what: `workflows.define, ${STEPS} x ctx.step`,
        async run(runId) {
          await steps.run(runId, { runId });
        },
      },
    ];
    const atomic = workload.atomic;
    if (atomic !== undefined) {
      const transactions = workflows.define(
        `bench-${workload.name}-tx`,
        async (ctx, input: { runId: string }) => {
          for (let step = 0; step < STEPS; step++) {
            await ctx.transaction(`step-${step}`, atomic.steps, (tx) => atomic.step(tx, input.runId, step));
          }
          return STEPS;
        },
        { version: 1 },
      );
      list.push({
        name: 'idem tx',
        what: `workflows.define, ${STEPS} x ctx.transaction (INSERT + step row in one commit), each then appended`,
        async run(runId) {
          await transactions.run(runId, { runId });
        },
      });
    }
    variants.set(workload.name, list);
  }
  return {
    variants(name) {
      const list = variants.get(name);
      if (list === undefined) throw new Error(`no Idem workflow defined for ${name}`);
      return list;
    },
    close: () => store.close(),
  };
}
