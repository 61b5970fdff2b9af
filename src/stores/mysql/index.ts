export {
  type MysqlPoolLike,
  type MysqlQuery,
  MysqlStore,
  type MysqlStoreOptions,
  type MysqlValue,
} from './mysql-store.js';
