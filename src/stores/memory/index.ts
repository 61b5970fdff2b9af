export { DEFAULT_MAX_BYTES, DEFAULT_MAX_RECORDS, MemoryStore, type MemoryStoreOptions } from './memory-store.js';
