/**
 * Which DynamoDB and AWS SDK errors are configuration mistakes rather than outages, by the
 * error's `name` (the service's exception type), and what to fix for each.
 */
import type { MisconfigurationAdvice } from '../../store-kit/index.js';
import { NotARecordError } from './record-item.js';

/** A table that exists but is not one the store can use; `advice` says what to fix. */
export class TableShapeError extends Error {
  override readonly name = 'TableShapeError';
  readonly advice: string;

  constructor(message: string, advice: string) {
    super(message);
    this.advice = advice;
  }
}

/** What the table must look like, for the messages. */
export const TABLE_SHAPE = 'partition key `pk` of type S (string) and no sort key';

/** The permissions the store's calls need, for the messages. */
const PERMISSIONS =
  'dynamodb:GetItem, BatchGetItem, PutItem, UpdateItem, DeleteItem, Scan and DescribeTable (and CreateTable, UpdateTimeToLive with createTable)';

/** What to fix when `error`, from a call on `table`, is a configuration mistake; `undefined` when it is not. */
export function dynamoDbMisconfiguration(table: string): MisconfigurationAdvice {
  return (error) => {
    if (error instanceof TableShapeError) return error.advice;
    if (error instanceof NotARecordError) {
      return `the table ${table} holds items the store did not write: give the store a table of its own`;
    }
    const { name, message } = (error ?? {}) as { name?: unknown; message?: unknown };
    const text = typeof message === 'string' ? message : '';
    switch (name) {
      case 'ResourceNotFoundException':
        return `the table ${table} does not exist in this region: create it (${TABLE_SHAPE}, TTL on expiresAtSeconds), or pass createTable: true`;
      case 'UnrecognizedClientException':
      case 'InvalidSignatureException':
      case 'MissingAuthenticationTokenException':
        return 'check the AWS credentials (access key id and secret) the client uses, and its region';
      case 'ExpiredTokenException':
        return 'the AWS session token has expired: give the client credentials that refresh themselves (a role, not fixed session keys)';
      case 'CredentialsProviderError':
        return 'the client found no AWS credentials: give `credentials`, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with an IAM role';
      case 'AccessDeniedException':
        return `grant the store's role ${PERMISSIONS} on the table ${table}`;
      case 'ValidationException':
        if (/key element does not match the schema|missing the key \S+ in the item/i.test(text)) {
          return `the table ${table} has another key: the store needs a ${TABLE_SHAPE}`;
        }
        return undefined;
    }
    if (/region is missing/i.test(text)) return 'give `region`, or set AWS_REGION';
    return undefined;
  };
}
