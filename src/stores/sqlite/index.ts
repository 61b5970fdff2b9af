export type { SqliteDatabaseLike, SqliteStatementLike, SqliteStoreOptions } from './sqlite-store.js';
export { SqliteStore } from './sqlite-store.js';
