/**
 * The kit for store authors: the store contract (`Store`, `AdminStore`, the inputs of each call,
 * `StoreLimits`, the claim rules), the journal contract (`JournalStore`, its inputs and its
 * rules), and everything an Idem store needs besides its own queries. A store written with it
 * passes `runStoreConformance` from `idem/testing`. docs/stores.md walks
 * through a store written with it. `idem` exports only the types a user holds (`Store`,
 * `AdminStore`, `IdempotencyRecord`). test/package/public-api.test.ts holds the list of exports.
 */
export {
  canTakeOver,
  decideClaim,
  extendedRecord,
  freshRecord,
  isClaimable,
  isExpired,
  takenOverRecord,
} from '../core/claim-rules.js';
export {
  type AppendInput,
  isJournalStore,
  type JournalEntry,
  type JournalStore,
  type ReopenInput,
  type RunListOptions,
  type RunPage,
} from '../core/journal.js';
export { isDueRun, mayAppend, mayReopen, reopenedRecord } from '../core/journal-rules.js';
export {
  type AdminStore,
  type ClaimInput,
  type ClaimResult,
  type CompleteInput,
  type ExtendInput,
  type IdempotencyRecord,
  isAdminStore,
  type ListOptions,
  type ListPage,
  type RecordState,
  type Store,
  StoreLimits,
} from '../core/store.js';
export { asBuffer } from './as-buffer.js';
export { importDriver, isDriverMissing } from './driver.js';
export {
  checkOneConnection,
  invalidOptions,
  type MisconfigurationAdvice,
  storeClosed,
} from './errors.js';
export { getMany } from './get-many.js';
export { checkIdentifier } from './identifier.js';
export { type GivenClient, type LazyClientOptions, type OwnClient, resolveGiven } from './lazy-client.js';
export { checkGetManyKeys, checkListLimit, checkSweepLimit } from './limits.js';
export { pageOf, recordsInOrder, type SqlInteger, type SqlRecordRow, toRecord } from './sql-record.js';
export { StoreOperations, type StoreOperationsOptions } from './store-operations.js';
