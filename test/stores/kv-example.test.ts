import { runStoreConformance } from '../../src/testing/index.js';

/** The store written with the kit in docs/stores.md passes the suite (its backend here lives in memory). */
const inMemory = 'the example runs on an in-memory map: other processes cannot see its keys';
runStoreConformance({
  name: 'docs/stores.md KvStore',
  factoryModule: new URL('./fixtures/kv-example.factory.ts', import.meta.url).href,
  skip: { processes: inMemory, crash: inMemory },
});
