import type { Store } from '../../src/core/store.js';
import { describe } from '../store-targets.js';
import { STEPS, type WorkflowVariant, type Workload, type WorkloadName } from './variants.js';

/**
 * The part of idem/workflow this variant uses, as the workflow API describes it. The module is
 * loaded by a computed specifier so that the benchmark compiles and runs before src/workflow/
 * exists; once it does, import `Workflows` statically and delete these three interfaces.
 */
interface WorkflowModule {
  Workflows: new (options: { store: Store }) => WorkflowsLike;
}

interface WorkflowsLike {
  define<Input, Output>(
    name: string,
    body: (ctx: WorkflowContextLike, input: Input) => Promise<Output>,
    options?: { version?: number },
  ): { run(id: string, input: Input): Promise<Output> };
}

interface WorkflowContextLike {
  step<T>(name: string, fn: (step: { key: string }) => Promise<T>): Promise<T>;
}

/** The Idem runtime on one database: one variant per workload. */
export interface IdemWorkflows {
  variant(workload: WorkloadName): WorkflowVariant;
  /** Closes the store. */
  close(): Promise<void>;
}

export interface IdemVariantOptions {
  /** Opens the journal store the runs are recorded in; called only once the module has loaded. */
  openStore: () => Store;
  workloads: Workload[];
}

/** Where the runtime will be: `src/workflow/index.ts`, run from source as the rest of the benchmark. */
const WORKFLOW_MODULE = new URL('../../src/workflow/index.js', import.meta.url).href;

/**
 * (d) Idem workflows: each workload defined once with `workflows.define`, its steps `ctx.step`
 * calls (the writing steps insert through the same business pool as the other variants), each
 * run `definition.run(runId, input)`: start, run every step in this process, complete. Resolves
 * `{ skipped }` with the reason when idem/workflow is not there yet or refuses the store, so the
 * benchmark still runs the other variants.
 */
export async function idemWorkflowVariant(options: IdemVariantOptions): Promise<IdemWorkflows | { skipped: string }> {
  let module: Partial<WorkflowModule>;
  try {
    module = (await import(WORKFLOW_MODULE)) as Partial<WorkflowModule>;
  } catch (error) {
    const missing = (error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND';
    return { skipped: missing ? 'idem/workflow not built yet' : `idem/workflow failed to load: ${describe(error)}` };
  }
  if (typeof module.Workflows !== 'function') return { skipped: 'idem/workflow exports no Workflows class' };

  const store = options.openStore();
  try {
    await (store as { migrate?: () => Promise<void> }).migrate?.();
    const workflows = new module.Workflows({ store });
    const variants = new Map<WorkloadName, WorkflowVariant>();
    for (const workload of options.workloads) {
      const definition = workflows.define(
        `bench-${workload.name}`,
        async (ctx, input: { runId: string }) => {
          for (let step = 0; step < STEPS; step++) {
            await ctx.step(`step-${step}`, () => workload.step(input.runId, step));
          }
          return STEPS;
        },
        { version: 1 },
      );
      variants.set(workload.name, {
        name: 'idem',
        what: `workflows.define, ${STEPS} x ctx.step`,
        async run(runId) {
          await definition.run(runId, { runId });
        },
      });
    }
    return {
      variant(name) {
        const variant = variants.get(name);
        if (variant === undefined) throw new Error(`no Idem workflow defined for ${name}`);
        return variant;
      },
      close: () => store.close(),
    };
  } catch (error) {
    await store.close().catch(() => {});
    return { skipped: `idem/workflow refused the store: ${describe(error)}` };
  }
}
