// The store of examples/custom-store.ts, written only with `idem` and `idem/store-kit`, passes the
// same conformance suite as Idem's own stores: the example is proven, not just compiled.
import { runStoreConformance } from '../../src/testing/index.js';

const inProcess = "the example's key-value service is a Map in this process: other processes cannot reach it";
runStoreConformance({
  name: 'custom store (examples/custom-store.ts)',
  factoryModule: new URL('./custom-store.factory.ts', import.meta.url).href,
  skip: { processes: inProcess, crash: inProcess },
});
