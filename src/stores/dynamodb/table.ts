/**
 * The store's table: checking its shape, and creating it when `createTable` is on. Creating is
 * for development and tests; in production the table usually comes from infrastructure code
 * (CloudFormation, CDK, Terraform), with the same shape and TTL on `expiresAtSeconds`.
 */
import type { TableDescription } from '@aws-sdk/client-dynamodb';
import { type Connection, isNamed } from './connection.js';
import { TABLE_SHAPE, TableShapeError } from './errors.js';
import { ATTRIBUTE, TTL_ATTRIBUTE } from './record-item.js';

/** How long to wait for a table being created (or deleted and re-created) to become ACTIVE, in ms. */
const ACTIVE_WAIT_MS = 60_000;
const POLL_MS = 100;

/** The table's description, or `undefined` when it does not exist. */
export async function describeTable(connection: Connection, table: string): Promise<TableDescription | undefined> {
  try {
    const answer = await connection.client.send(new connection.sdk.DescribeTableCommand({ TableName: table }));
    return answer.Table;
  } catch (error) {
    if (isNamed(error, 'ResourceNotFoundException')) return undefined;
    throw error;
  }
}

/** Throws `TableShapeError` unless the table's key is the store's: `pk`, a string, and nothing else. */
export function checkShape(description: TableDescription, table: string): void {
  const keys = description.KeySchema ?? [];
  const pk = description.AttributeDefinitions?.find((definition) => definition.AttributeName === ATTRIBUTE.key);
  if (keys.length !== 1 || keys[0]?.AttributeName !== ATTRIBUTE.key || pk?.AttributeType !== 'S') {
    const found = keys.map((key) => `${key.AttributeName} (${key.KeyType})`).join(', ');
    throw new TableShapeError(
      `the table ${table} has the key ${found || 'none'}`,
      `give the store a table with a ${TABLE_SHAPE}`,
    );
  }
}

/**
 * Creates the table if it is missing (on-demand capacity, TTL on `expiresAtSeconds`) and waits
 * until it is ACTIVE. Safe from many processes at once: a table another process is creating is
 * waited for, not created twice.
 */
export async function ensureTable(connection: Connection, table: string): Promise<void> {
  let description = await describeTable(connection, table);
  if (description === undefined) {
    const { sdk, client } = connection;
    try {
      await client.send(
        new sdk.CreateTableCommand({
          TableName: table,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [{ AttributeName: ATTRIBUTE.key, AttributeType: 'S' }],
          KeySchema: [{ AttributeName: ATTRIBUTE.key, KeyType: 'HASH' }],
        }),
      );
    } catch (error) {
      // Another process created it first.
      if (!isNamed(error, 'ResourceInUseException')) throw error;
    }
    description = await waitUntilActive(connection, table);
    await enableTtl(connection, table);
  } else if (description.TableStatus !== 'ACTIVE') {
    description = await waitUntilActive(connection, table);
  }
  checkShape(description, table);
}

async function waitUntilActive(connection: Connection, table: string): Promise<TableDescription> {
  const deadlineMs = Date.now() + ACTIVE_WAIT_MS;
  for (;;) {
    const description = await describeTable(connection, table);
    if (description?.TableStatus === 'ACTIVE') return description;
    if (Date.now() >= deadlineMs) {
      throw new Error(
        `the table ${table} is ${description?.TableStatus ?? 'missing'}, not ACTIVE, after ${ACTIVE_WAIT_MS} ms`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/**
 * Turns DynamoDB's TTL on for `expiresAtSeconds`, so expired records go without a sweep. Local
 * emulators without TTL (dynalite answers `UnknownOperationException`) are left as they are: the
 * store treats expired records as absent anyway, and `sweep()` deletes them.
 */
async function enableTtl(connection: Connection, table: string): Promise<void> {
  try {
    await connection.client.send(
      new connection.sdk.UpdateTimeToLiveCommand({
        TableName: table,
        TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
      }),
    );
  } catch (error) {
    if (isNamed(error, 'UnknownOperationException')) return;
    // Another process turned it on first.
    if (isNamed(error, 'ValidationException') && /already enabled/i.test(String((error as Error).message))) return;
    throw error;
  }
}
