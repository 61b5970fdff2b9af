export type { DynamoDbClientLike } from './connection.js';
export {
  DYNAMODB_MAX_RESULT_BYTES,
  type DynamoDbCredentials,
  DynamoDbStore,
  type DynamoDbStoreOptions,
} from './dynamodb-store.js';
