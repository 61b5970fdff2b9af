import type { StepDatabase } from '../../src/workflow/index.js';
import type { WorkflowDatabase } from './databases.js';

/** Steps in every benchmarked workflow. */
export const STEPS = 10;

export type WorkloadName = 'empty' | 'writes';

/** What each of a workflow's steps does. */
export interface Workload {
  name: WorkloadName;
  /** For the table. */
  what: string;
  /** Step `step` of run `runId`; returns the step's value, its index. */
  step(runId: string, step: number): Promise<number>;
  /**
   * The same step as one atomic SQL step (writes only): the business INSERT made on `tx`, the
   * connection that holds the step's transaction, so it commits with the step's row.
   */
  atomic?: AtomicStep;
  /** How many times `step` (or `atomic.step`) ran, over every variant (the checks read it). */
  calls: number;
}

/** A step whose business write runs inside the transaction of a step database. */
export interface AtomicStep {
  /** The step database on the business database (`postgresSteps` on its pool, `sqliteSteps` on its file). */
  steps: StepDatabase<unknown>;
  /** Step `step` of run `runId`, its INSERT on `tx`; returns the step's index. */
  step(tx: unknown, runId: string, step: number): Promise<number>;
}

/**
 * The two workloads on one database: 10 empty steps, and 10 steps that each INSERT one business
 * row (also as atomic steps, for the Idem variant that records them in the business transaction).
 */
export function workloadsOn(database: WorkflowDatabase): Workload[] {
  const empty: Workload = {
    name: 'empty',
    what: `${STEPS} empty steps`,
    calls: 0,
    async step(_runId, step) {
      empty.calls += 1;
      return step;
    },
  };
  const writes: Workload = {
    name: 'writes',
    what: `${STEPS} steps, 1 INSERT each`,
    calls: 0,
    async step(runId, step) {
      writes.calls += 1;
      await database.write(runId, step);
      return step;
    },
    atomic: {
      steps: database.atomicWrites.steps,
      async step(tx, runId, step) {
        writes.calls += 1;
        await database.atomicWrites.write(tx, runId, step);
        return step;
      },
    },
  };
  return [empty, writes];
}

export type VariantName = 'bare' | 'floor' | 'dbos' | 'idem' | 'idem tx';

/** The variants that run on Idem: the targets judge each of them. */
export const IDEM_VARIANTS = ['idem', 'idem tx'] as const satisfies readonly VariantName[];

/** One way of running a workload's workflow. */
export interface WorkflowVariant {
  name: VariantName;
  /** What one workflow costs in this variant, for the table. */
  what: string;
  /** Runs the workflow `runId` to its end. */
  run(runId: string): Promise<void>;
}

/** (a) The steps as plain calls, one after the other: no record of anything. */
export function bareVariant(workload: Workload): WorkflowVariant {
  return {
    name: 'bare',
    what: workload.name === 'writes' ? `${STEPS} INSERTs` : `${STEPS} calls`,
    async run(runId) {
      for (let step = 0; step < STEPS; step++) await workload.step(runId, step);
    },
  };
}

/**
 * (b) The floor: what a journal of steps cannot go below on this database. Each step runs, then
 * its value is written as one journal row: a plain INSERT of (run id, seq, the value as JSON, time)
 * into a table keyed by (run id, seq), on its own connection pool, autocommit. So one store write
 * per step, after the business write where there is one: 10 writes per workflow, or 20 with the
 * business writes. No run record (a durable runtime also writes one when the run starts and when it
 * ends), no fencing, no reads: any runtime that records each step pays at least this.
 */
export function floorVariant(workload: Workload, database: WorkflowDatabase): WorkflowVariant {
  return {
    name: 'floor',
    what: workload.name === 'writes' ? `${STEPS} x (INSERT + journal INSERT)` : `${STEPS} journal INSERTs`,
    async run(runId) {
      for (let step = 0; step < STEPS; step++) {
        const value = await workload.step(runId, step);
        await database.journal(runId, step, Buffer.from(JSON.stringify(value)));
      }
    },
  };
}
