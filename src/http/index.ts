export { type CachePolicy, NOT_STORED_BY_DEFAULT } from './cache-policy.js';
export {
  type AnonymousPolicy,
  type CallerScopeOptions,
  callerScope,
  DEFAULT_SCOPE_HEADERS,
  type HttpStoreKeyParts,
  httpStoreKey,
} from './caller-scope.js';
export {
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_METHODS,
  DEFAULT_REPLAY_HEADERS,
  DEFAULT_RETRY_AFTER_MS,
  type HttpDecision,
  type HttpEvent,
  HttpIdempotency,
  type HttpIdempotencyOptions,
  type HttpIdentification,
  type HttpIdentity,
  UNPROTECTED_HEADER,
} from './http-idempotency.js';
export type { HttpRequestInfo, HttpResponseData } from './http-types.js';
export { parseIdempotencyKey } from './key-header.js';
export { Problems, problemResponse } from './problem.js';
export { type FingerprintOptions, requestFingerprint } from './request-fingerprint.js';
// A type only: recordings are made by HttpIdempotency, never by hand.
export type { ResponseRecording } from './response-recording.js';
