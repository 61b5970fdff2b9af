export {
  type ConformanceTestApi,
  runStoreConformance,
  type StoreConformanceOptions,
  StoreScenario,
} from './store-conformance.js';
