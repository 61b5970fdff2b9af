/**
 * `idem/testing`: the conformance suites, for people who write a store (`runStoreConformance`)
 * or an HTTP adapter (`runHttpConformance`, with the neutral app it serves and `send` to talk to
 * it). test/package/public-api.test.ts holds the list of exports.
 */
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
