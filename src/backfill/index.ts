/**
 * `idem/backfill`: process every item of a collection to completion once, across any number of
 * re-runs and crashes (docs/backfill.md).
 */
export {};
