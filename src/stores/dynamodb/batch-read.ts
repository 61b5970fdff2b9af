/**
 * The DynamoDB store's batch read (`getMany`): BatchGetItem, 100 keys a request (DynamoDB's
 * limit), the requests of one call in flight together. DynamoDB may leave keys unprocessed
 * (throttling, or an answer past 16 MB); those are asked again, after a pause that doubles each
 * time a request brings nothing back, as AWS advises.
 */
import type { IdempotencyRecord } from '../../core/index.js';
import type { Connection } from './connection.js';
import { type Item, keyOf, recordOf } from './record-item.js';
import * as requests from './requests.js';

/** Most keys in one BatchGetItem request: DynamoDB refuses more. */
const BATCH_KEYS = 100;
/** Requests in a row that may bring nothing back before the read gives up. */
const MAX_EMPTY_ROUNDS = 8;
/** The first pause after a request that brought nothing back, in ms; it doubles each time. */
const FIRST_PAUSE_MS = 25;

/** The records found for `keys` (no duplicates), in no set order, whatever their expiry. */
export async function readMany(
  connection: Connection,
  table: string,
  keys: readonly string[],
): Promise<IdempotencyRecord[]> {
  const batches: Item[][] = [];
  for (let start = 0; start < keys.length; start += BATCH_KEYS) {
    batches.push(keys.slice(start, start + BATCH_KEYS).map(keyOf));
  }
  const found = await Promise.all(batches.map((batch) => readBatch(connection, table, batch)));
  return found.flat();
}

/** One batch of at most 100 keys, asked again for what DynamoDB leaves unprocessed. */
async function readBatch({ client, sdk }: Connection, table: string, batch: Item[]): Promise<IdempotencyRecord[]> {
  const records: IdempotencyRecord[] = [];
  let pending = batch;
  let emptyRounds = 0;
  while (pending.length > 0) {
    const answer = await client.send(new sdk.BatchGetItemCommand(requests.readMany(table, pending)));
    const items = answer.Responses?.[table] ?? [];
    for (const item of items) records.push(recordOf(item));
    const left = answer.UnprocessedKeys?.[table]?.Keys ?? [];
    if (left.length === 0) break;
    if (left.length < pending.length) {
      emptyRounds = 0;
    } else if (++emptyRounds > MAX_EMPTY_ROUNDS) {
      throw new Error(
        `BatchGetItem left ${left.length} keys unprocessed ${MAX_EMPTY_ROUNDS} times in a row (throttled)`,
      );
    } else {
      await pause(FIRST_PAUSE_MS * 2 ** (emptyRounds - 1) * (0.5 + Math.random()));
    }
    pending = left;
  }
  return records;
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
