export { canonicalize, compareCodePoints, fingerprintOf, hashText } from './canonical.js';
export {
  canTakeOver,
  decideClaim,
  extendedRecord,
  freshRecord,
  isClaimable,
  isExpired,
  takenOverRecord,
} from './claim-rules.js';
export {
  type BeginInput,
  DEFAULT_LEASE_MS,
  DEFAULT_MAX_RESULT_BYTES,
  DEFAULT_RETENTION_MS,
  DEFAULT_STORE_TIMEOUT_MS,
  type Decision,
  Engine,
  type EngineOptions,
  Lease,
} from './engine.js';
export {
  ErrorCode,
  IdempotencyError,
  type IdempotencyErrorOptions,
  isIdempotencyError,
  storeMisconfigured,
  storeUnavailable,
} from './errors.js';
export {
  type IdempotencyContext,
  type IdempotentOptions,
  idempotencyContext,
  idempotent,
} from './idempotent.js';
export type { EncryptionKey, EncryptionKeys } from './keyring.js';
export { MAX_KEY_LENGTH, storeKeyOf, validateKey } from './keys.js';
export { isSealed, type Outcome, OutcomeCodec, OutcomeKind } from './outcome.js';
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
} from './store.js';
export type { ErrorClass, ErrorRevivalOptions, StoredError } from './stored-error.js';
export { defaultSerializer, type ValueSerializer } from './value-codec.js';
