/**
 * `idem/testing`: checks for the user's own test suite (`checkIdempotency`, `assertIdempotent`,
 * `retryingClient`, `checkCrashes`; see docs/testing.md), and the conformance suites, for people
 * who write a store (`runStoreConformance`) or an HTTP adapter (`runHttpConformance`, with the
 * neutral app it serves and `send` to talk to it). test/package/public-api.test.ts holds the list
 * of exports.
 */

export {
  assertCrashSafe,
  type CheckCrashesOptions,
  type CrashPoint,
  type CrashReport,
  checkCrashes,
} from './check-crashes/check-crashes.js';
export { type CrashContext, crashScenario } from './check-crashes/crash-scenario.js';
export { assertIdempotent } from './check-idempotency/assert-idempotent.js';
export {
  type CheckExchange,
  type CheckIdempotencyOptions,
  checkIdempotency,
  IDEMPOTENCY_SCENARIOS,
  type IdempotencyReport,
  type IdempotencyScenarioName,
  type ScenarioEvidence,
  type ScenarioReport,
} from './check-idempotency/check-idempotency.js';
export type { CheckRequest } from './check-idempotency/check-request.js';
export {
  type Attempt,
  type NetworkFault,
  type NetworkPlan,
  type RetryingClient,
  type RetryingClientOptions,
  type RetryingRequest,
  retryingClient,
  type SendReport,
} from './check-idempotency/retrying-client.js';
export type {
  CheckTarget,
  FastifyLike,
  FetchHandlerLike,
  KoaLike,
  TargetKind,
} from './check-idempotency/serve-target.js';
export {
  ConformanceApp,
  type ConformanceRoute,
  type NeutralResponse,
  writeNeutralResponse,
} from './conformance-app.js';
export { type SendOptions, type SentResponse, send } from './http-client.js';
export {
  type HttpConformanceOptions,
  type RunningServer,
  runHttpConformance,
} from './http-conformance.js';
export {
  type OutboxConformanceOptions,
  type OutboxConformanceTarget,
  OutboxScenario,
  type OutboxScenarioCounts,
  runOutboxConformance,
} from './outbox-conformance.js';
export {
  type ConformanceTestApi,
  type ConformanceTestContext,
  runStoreConformance,
  type StoreConformanceOptions,
  StoreScenario,
} from './store-conformance.js';
