import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Store } from '../../src/core/store.js';
import { DynamoDbStore, type DynamoDbStoreOptions } from '../../src/stores/dynamodb/index.js';

/** The local dynalite that .ci/services starts; override with IDEM_DYNAMODB_URL. */
export const dynamoDbUrl = process.env.IDEM_DYNAMODB_URL ?? 'http://127.0.0.1:4567';

/** The own-client options that reach the test server: dynalite takes any credentials. */
export const dynamoDbConnection = {
  endpoint: dynamoDbUrl,
  region: process.env.AWS_REGION ?? 'us-east-1',
  credentials: {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'idem-test',
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'idem-test',
  },
} satisfies DynamoDbStoreOptions;

/** A client of the test server, for tests that look at the table themselves; destroy it after. */
export function testClient(): DynamoDBClient {
  return new DynamoDBClient(dynamoDbConnection);
}

export async function createStore(namespace: string): Promise<Store> {
  return new DynamoDbStore({ ...dynamoDbConnection, table: `idem_${namespace}`, createTable: true });
}

export async function dropStore(namespace: string): Promise<void> {
  await dropTable(`idem_${namespace}`);
}

/** Deletes `table` if it exists. */
export async function dropTable(table: string): Promise<void> {
  const client = testClient();
  try {
    await client.send(new DeleteTableCommand({ TableName: table }));
  } catch (error) {
    if ((error as Error).name !== 'ResourceNotFoundException') throw error;
  } finally {
    client.destroy();
  }
}
