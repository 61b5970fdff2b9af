/**
 * What the store talks to: the client (the caller's or its own) and the SDK module it builds
 * commands with. The SDK is needed either way: a client only sends the commands it is given.
 */
import type * as Sdk from '@aws-sdk/client-dynamodb';
import { ErrorCode, IdempotencyError } from '../../core/index.js';
import { isDriverMissing } from '../../store-kit/index.js';

export type DynamoDbSdk = typeof Sdk;

/**
 * The part of a DynamoDB client the store uses. `DynamoDBClient` from `@aws-sdk/client-dynamodb`
 * (v3) fits as it is.
 */
export interface DynamoDbClientLike {
  /** Sends one command built by `@aws-sdk/client-dynamodb` and resolves with its output. */
  send(command: object): Promise<unknown>;
}

/** The client with the SDK module that builds its commands. */
export interface Connection {
  client: Sdk.DynamoDBClient;
  sdk: DynamoDbSdk;
}

const DRIVER = '@aws-sdk/client-dynamodb';

/**
 * Loads the SDK. When it is missing, says which `npm i` to run: passing a client does not help
 * here (the store builds its commands with the SDK), so `importDriver`'s "or pass" is not used.
 */
export async function loadSdk(): Promise<DynamoDbSdk> {
  try {
    return await import('@aws-sdk/client-dynamodb');
  } catch (error) {
    if (!isDriverMissing(error, DRIVER)) throw error;
    throw new IdempotencyError(
      ErrorCode.STORE_UNAVAILABLE,
      `[idem] [dynamodb] its driver ${DRIVER} is not installed: run npm i ${DRIVER}.`,
      { cause: error },
    );
  }
}

/** True when `error` is DynamoDB's answer that a condition did not hold (a refusal, not a failure). */
export function isConditionFailure(error: unknown): error is { Item?: Record<string, Sdk.AttributeValue> } {
  return (error as { name?: unknown } | null)?.name === 'ConditionalCheckFailedException';
}

/** True when `error` has the exception type `name` (`ResourceNotFoundException`...). */
export function isNamed(error: unknown, name: string): boolean {
  return (error as { name?: unknown } | null)?.name === name;
}
