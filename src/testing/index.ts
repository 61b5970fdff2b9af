export {
  ConformanceApp,
  type ConformanceRoute,
  type NeutralResponse,
  writeNeutralResponse,
} from './conformance-app.js';
export { assertProblem, type SendOptions, type SentResponse, send } from './http-client.js';
export {
  type HttpConformanceOptions,
  type RunningServer,
  runHttpConformance,
  unreachableStore,
} from './http-conformance.js';
export {
  CONFORMANCE_ONLY_ENV,
  type ConformanceTestApi,
  type ConformanceTestContext,
  runStoreConformance,
  type StoreConformanceOptions,
  StoreScenario,
} from './store-conformance.js';
