import { runStoreConformance } from '../../src/testing/index.js';

const perProcess = 'a memory store lives in one process: other processes cannot see its keys';
runStoreConformance({
  name: 'memory',
  factoryModule: new URL('./memory.factory.ts', import.meta.url).href,
  skip: { processes: perProcess, crash: perProcess, journalProcesses: perProcess },
});
