/**
 * `idem/backfill`: process every item of a collection to completion once, across any number of
 * re-runs and crashes (docs/backfill.md).
 */
export { backfill, backfillKeyOf } from './backfill.js';
export { BACKFILL_NAMESPACE, DEFAULT_BACKFILL_RETENTION_MS } from './settings.js';
export type {
  BackfillContext,
  BackfillFailure,
  BackfillHandler,
  BackfillOptions,
  BackfillProgress,
  BackfillResult,
} from './types.js';
