/**
 * The kit for store authors: everything an Idem store needs besides its own queries. A store
 * written with this kit and the contract in `idem` (`Store`, the claim rules) passes
 * `runStoreConformance` from `idem/testing`.
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
export { asBuffer } from '../stores/shared/as-buffer.js';
export { importDriver, isDriverMissing } from '../stores/shared/driver.js';
export {
  checkOneConnection,
  invalidOptions,
  type MisconfigurationAdvice,
  storeClosed,
  storeFailure,
} from '../stores/shared/errors.js';
export { checkIdentifier } from '../stores/shared/identifier.js';
export { type GivenClient, LazyClient, type LazyClientOptions, type OwnClient } from '../stores/shared/lazy-client.js';
export { pageOf, type SqlInteger, type SqlRecordRow, toRecord } from '../stores/shared/sql-record.js';
export { StoreOperations, type StoreOperationsOptions } from './store-operations.js';
