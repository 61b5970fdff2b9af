/**
 * The requests of the DynamoDB store, one per operation, as inputs for `@aws-sdk/client-dynamodb`
 * commands. In expressions `#field` names a record field (see `ATTRIBUTE`; `namesOf` maps them,
 * since `state`, `token` and `result` are reserved words) and `:name` a bound value. Every write
 * is one conditional request, so each is atomic on its item; a refused condition comes back as
 * `ConditionalCheckFailedException`, which is an answer, not a failure.
 */
import type {
  BatchGetItemCommandInput,
  DeleteItemCommandInput,
  GetItemCommandInput,
  PutItemCommandInput,
  ScanCommandInput,
  UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import {
  type ClaimInput,
  type CompleteInput,
  type ExtendInput,
  freshRecord,
  type ListOptions,
} from '../../store-kit/index.js';
import { type Item, itemOf, keyOf, n, namesOf, s, ttlSeconds } from './record-item.js';

const IN_PROGRESS = s('in_progress');
const COMPLETED = s('completed');

/** A conditional UpdateItem of the record at `key`: the names its expressions use are mapped from both. */
function conditionalUpdate(
  table: string,
  key: string,
  condition: string,
  update: string,
  values: NonNullable<UpdateItemCommandInput['ExpressionAttributeValues']>,
): UpdateItemCommandInput {
  return {
    TableName: table,
    Key: keyOf(key),
    ConditionExpression: condition,
    UpdateExpression: update,
    ExpressionAttributeNames: namesOf(condition, update),
    ExpressionAttributeValues: values,
  };
}

/*
 * claimFresh (PutItem of a fresh record): wins where there is no record, or only an expired one.
 * :now now ms. Refused otherwise; on DynamoDB the refusal carries the record that stands
 * (ReturnValuesOnConditionCheckFailure ALL_OLD), so no second read is needed.
 */
export function claimFresh(table: string, input: ClaimInput): PutItemCommandInput {
  const condition = 'attribute_not_exists(#key) OR #expiresAtMs <= :now';
  return {
    TableName: table,
    Item: itemOf(freshRecord(input)),
    ConditionExpression: condition,
    ExpressionAttributeNames: namesOf(condition),
    ExpressionAttributeValues: { ':now': n(input.nowMs) },
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
  };
}

/*
 * takeOver (UpdateItem): replaces the holder of an in-progress record whose lease ended, with the
 * same fingerprint, exactly as the claim saw it (`seenToken`), so two callers that saw the same
 * ended lease cannot both take it over. `createdAtMs` is kept, `attempts` goes up by one.
 * :seen the token seen, :now now ms, :fp fingerprint, :token the new token, :lease new lease end
 * ms, :exp new retention end ms, :ttl the same in seconds, :one 1.
 * Returns the record as written (ALL_NEW); refused when the record changed meanwhile.
 */
export function takeOver(table: string, input: ClaimInput, seenToken: string): UpdateItemCommandInput {
  const condition =
    '#token = :seen AND #state = :inProgress AND #leaseExpiresAtMs <= :now AND #fingerprint = :fp AND #expiresAtMs > :now';
  const update =
    'SET #token = :token, #leaseExpiresAtMs = :lease, #expiresAtMs = :exp, #expiresAtSeconds = :ttl, #updatedAtMs = :now, #attempts = #attempts + :one';
  const values = {
    ':inProgress': IN_PROGRESS,
    ':seen': s(seenToken),
    ':now': n(input.nowMs),
    ':fp': s(input.fingerprint),
    ':token': s(input.token),
    ':lease': n(input.leaseExpiresAtMs),
    ':exp': n(input.expiresAtMs),
    ':ttl': ttlSeconds(input.expiresAtMs),
    ':one': n(1),
  };
  return { ...conditionalUpdate(table, input.key, condition, update, values), ReturnValues: 'ALL_NEW' };
}

/*
 * complete (UpdateItem): stores the result and marks the record completed, if the token holds.
 * :token, :result bytes, :now now ms, :exp new retention end ms, :ttl the same in seconds.
 * Refused when the record is gone, completed, or held by another token.
 */
export function complete(table: string, input: CompleteInput): UpdateItemCommandInput {
  const condition = '#token = :token AND #state = :inProgress';
  const update =
    'SET #state = :completed, #result = :result, #expiresAtMs = :exp, #expiresAtSeconds = :ttl, #updatedAtMs = :now';
  return conditionalUpdate(table, input.key, condition, update, {
    ':inProgress': IN_PROGRESS,
    ':completed': COMPLETED,
    ':token': s(input.token),
    ':result': { B: input.result },
    ':now': n(input.nowMs),
    ':exp': n(input.expiresAtMs),
    ':ttl': ttlSeconds(input.expiresAtMs),
  });
}

/*
 * release (DeleteItem): deletes an in-progress record, if the token holds. :token.
 */
export function release(table: string, key: string, token: string): DeleteItemCommandInput {
  const condition = '#token = :token AND #state = :inProgress';
  return {
    TableName: table,
    Key: keyOf(key),
    ConditionExpression: condition,
    ExpressionAttributeNames: namesOf(condition),
    ExpressionAttributeValues: { ':inProgress': IN_PROGRESS, ':token': s(token) },
  };
}

/*
 * extend, `raising` (UpdateItem): moves the lease end and raises the retention end to :exp, if
 * the token holds and the record's retention ends no later than :exp (the usual case: the engine
 * asks for now + retention). An update expression has no max(), so the other case is a second
 * request, not `raising`: it moves the lease end and keeps the record's later retention end.
 * :token, :lease new lease end ms, :exp retention end ms, :ttl the same in seconds (raising
 * only), :now now ms. Refused when the token no longer holds, or the retention is on the other side.
 */
export function extend(table: string, input: ExtendInput, raising: boolean): UpdateItemCommandInput {
  const condition = `#token = :token AND #state = :inProgress AND #expiresAtMs ${raising ? '<=' : '>'} :exp`;
  const update = raising
    ? 'SET #leaseExpiresAtMs = :lease, #expiresAtMs = :exp, #expiresAtSeconds = :ttl, #updatedAtMs = :now'
    : 'SET #leaseExpiresAtMs = :lease, #updatedAtMs = :now';
  return conditionalUpdate(table, input.key, condition, update, {
    ':inProgress': IN_PROGRESS,
    ':token': s(input.token),
    ':lease': n(input.leaseExpiresAtMs),
    ':exp': n(input.expiresAtMs),
    ':now': n(input.nowMs),
    ...(raising ? { ':ttl': ttlSeconds(input.expiresAtMs) } : {}),
  });
}

/*
 * read (GetItem): the record, strongly consistent, whatever its expiry.
 */
export function read(table: string, key: string): GetItemCommandInput {
  return { TableName: table, Key: keyOf(key), ConsistentRead: true };
}

/*
 * readMany (BatchGetItem): the records of `keys` (at most 100, no duplicates: DynamoDB refuses
 * both), strongly consistent, whatever their expiry. The answer holds the items found, in no set
 * order, and under `UnprocessedKeys` the keys DynamoDB left for another request (throttled, or
 * past 16 MB of answer).
 */
export function readMany(table: string, keys: readonly Item[]): BatchGetItemCommandInput {
  return { RequestItems: { [table]: { Keys: [...keys], ConsistentRead: true } } };
}

/*
 * remove (DeleteItem): deletes the record whatever its state; ALL_OLD says whether one was there.
 */
export function remove(table: string, key: string): DeleteItemCommandInput {
  return { TableName: table, Key: keyOf(key), ReturnValues: 'ALL_OLD' };
}

/*
 * listPage (Scan, strongly consistent): up to `limit` items evaluated after `start` (a key), in
 * DynamoDB's scan order; :state keeps one state (with `state`), :now leaves out expired records
 * (with `nowMs`).
 */
export function listPage(
  table: string,
  options: Pick<ListOptions, 'state' | 'nowMs'>,
  start: Item | undefined,
  limit: number,
): ScanCommandInput {
  const filters: string[] = [];
  const values: Item = {};
  if (options.state !== undefined) {
    filters.push('#state = :state');
    values[':state'] = s(options.state);
  }
  if (options.nowMs !== undefined) {
    filters.push('#expiresAtMs > :now');
    values[':now'] = n(options.nowMs);
  }
  const filter = filters.join(' AND ');
  return {
    TableName: table,
    ConsistentRead: true,
    ExclusiveStartKey: start,
    Limit: limit,
    ...(filter === ''
      ? {}
      : { FilterExpression: filter, ExpressionAttributeNames: namesOf(filter), ExpressionAttributeValues: values }),
  };
}

/*
 * sweepPage (Scan, strongly consistent): the keys of expired records after `start`. :now now ms.
 */
export function sweepPage(table: string, nowMs: number, start: Item | undefined): ScanCommandInput {
  const filter = '#expiresAtMs <= :now';
  const projection = '#key';
  return {
    TableName: table,
    ConsistentRead: true,
    ExclusiveStartKey: start,
    FilterExpression: filter,
    ProjectionExpression: projection,
    ExpressionAttributeNames: namesOf(filter, projection),
    ExpressionAttributeValues: { ':now': n(nowMs) },
  };
}

/*
 * sweepOne (DeleteItem): deletes a record the sweep found expired, only if it still is (a claim
 * may have renewed it since). :now now ms.
 */
export function sweepOne(table: string, key: Item, nowMs: number): DeleteItemCommandInput {
  const condition = '#expiresAtMs <= :now';
  return {
    TableName: table,
    Key: key,
    ConditionExpression: condition,
    ExpressionAttributeNames: namesOf(condition),
    ExpressionAttributeValues: { ':now': n(nowMs) },
  };
}
