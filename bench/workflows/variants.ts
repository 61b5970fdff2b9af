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
  /** How many times `step` ran, over every variant (the checks read it). */
  calls: number;
}

/** The two workloads on one database: 10 empty steps, and 10 steps that each INSERT one business row. */
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
  };
  return [empty, writes];
}

export type VariantName = 'bare' | 'floor' | 'dbos' | 'idem';

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
