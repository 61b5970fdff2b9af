/**
 * `idem/workflow`: durable workflows over an Idem store. A run is a record keyed by its workflow
 * id; its steps are a journal appended under the run's lease. See docs/workflow.md.
 */
export type { ResultOptions, WorkflowHandle } from './handle.js';
export type { ListRunsOptions } from './operator.js';
export { type RecoverOptions, type WorkerOptions, WorkflowWorker } from './recovery.js';
export type {
  DefineOptions,
  Reconciliation,
  RetryOptions,
  RunState,
  RunView,
  StartOptions,
  StepContext,
  StepOptions,
  StepView,
  WorkflowContext,
  WorkflowFunction,
} from './types.js';
export { type WorkflowDefinition, Workflows, type WorkflowsOptions } from './workflows.js';
