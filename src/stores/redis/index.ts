export { type RedisLike, RedisStore, type RedisStoreOptions } from './redis-store.js';
