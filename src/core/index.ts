/**
 * `idem`: what users of Idem need. `idempotent()` and its options; the errors and their codes;
 * the `Store` type a store is passed as; and the engine with its lease and decision, for people
 * who build a face of their own (see docs/function.md, "Under every face"). What only store
 * authors need (the claim inputs, the claim rules, the limits) is in `idem/store-kit`.
 * Everything else in src/core is internal: the rest of src/ imports it by its module path.
 * test/package/public-api.test.ts holds the list; a change to it is a change of the public API.
 */
export { fingerprintOf } from './canonical.js';
export { type BeginInput, type Decision, Engine, type EngineOptions, Lease } from './engine.js';
export { ErrorCode, IdempotencyError, type IdempotencyErrorOptions, isIdempotencyError } from './errors.js';
export {
  type IdempotencyContext,
  type IdempotentOptions,
  idempotencyContext,
  idempotent,
} from './idempotent.js';
export type { EncryptionKey, EncryptionKeys } from './keyring.js';
export { storeKeyOf } from './keys.js';
export { type Outcome, OutcomeKind } from './outcome.js';
export type { AdminStore, IdempotencyRecord, RecordState, Store } from './store.js';
export type { OnStoreUnavailable, UnprotectedReason, UnprotectedRun } from './store-fault-policy.js';
export type { ErrorClass, ErrorRevivalOptions, StoredError } from './stored-error.js';
export { type Sweeper, type SweeperOptions, type SweepResult, startSweeper } from './sweeper.js';
export type {
  ClaimOutcome,
  IdemEvent,
  TelemetryAttributes,
  TelemetryCounter,
  TelemetryHistogram,
  TelemetryMeter,
  TelemetryOptions,
  TelemetrySpan,
  TelemetryTracer,
} from './telemetry.js';
export { defaultSerializer, type ValueSerializer } from './value-codec.js';
