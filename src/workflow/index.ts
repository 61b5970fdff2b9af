/**
 * `idem/workflow`: durable workflows over an Idem store. A run is a record keyed by its workflow
 * id; its steps are a journal appended under the run's lease. See docs/workflow.md.
 */
export type { ResultOptions, WorkflowHandle } from './handle.js';
export type { ListRunsOptions } from './operator.js';
export { type RecoverOptions, type WorkerOptions, WorkflowWorker } from './recovery.js';
export {
  type MysqlConnectionLike,
  type MysqlConnectionPoolLike,
  type MysqlStepsOptions,
  mysqlSteps,
} from './sql/mysql-steps.js';
export {
  type PgConnectionLike,
  type PgConnectionPoolLike,
  type PostgresStepsOptions,
  postgresSteps,
} from './sql/postgres-steps.js';
export { type SqliteStepDatabaseLike, type SqliteStepsOptions, sqliteSteps } from './sql/sqlite-steps.js';
export type { RecordedStep, StepDatabase, StepIdentity, StepOutcome, StepRef } from './sql/step-database.js';
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
