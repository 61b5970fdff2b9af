export { type PgPoolLike, PostgresStore, type PostgresStoreOptions } from './postgres-store.js';
