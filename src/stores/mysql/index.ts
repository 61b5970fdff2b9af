export type { MysqlConnectionLike, MysqlPoolLike, MysqlQuery, MysqlValue } from './client.js';
export { MysqlStore, type MysqlStoreOptions } from './mysql-store.js';
