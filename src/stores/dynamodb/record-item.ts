/**
 * A record as the DynamoDB store keeps it: one item, partition key `pk` (a string), one attribute
 * per field of the record, times as numbers of ms, the result as binary (`B`), plus
 * `expiresAtSeconds`, the retention end in whole seconds for DynamoDB's own TTL (the one time not
 * in ms: TTL reads only seconds; it is rounded up, so TTL never drops a record before `expiresAtMs`).
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { IdempotencyRecord, RecordState } from '../../core/index.js';

/** An item: attribute name to value, as `@aws-sdk/client-dynamodb` sends and receives it. */
export type Item = Record<string, AttributeValue>;

/**
 * The attribute of each field. Expressions name them as `#field` (`#state`), never by their own
 * name, since some (`state`, `token`, `result`) are DynamoDB reserved words.
 */
export const ATTRIBUTE = {
  key: 'pk',
  fingerprint: 'fingerprint',
  state: 'state',
  token: 'token',
  leaseExpiresAtMs: 'leaseExpiresAtMs',
  expiresAtMs: 'expiresAtMs',
  result: 'result',
  createdAtMs: 'createdAtMs',
  updatedAtMs: 'updatedAtMs',
  attempts: 'attempts',
  expiresAtSeconds: 'expiresAtSeconds',
} as const;
export type Field = keyof typeof ATTRIBUTE;

/** The name of the TTL attribute, for `UpdateTimeToLive` and the docs. */
export const TTL_ATTRIBUTE = ATTRIBUTE.expiresAtSeconds;

/** A table item that is not an Idem record: the table holds something else, or an older layout. */
export class NotARecordError extends Error {
  override readonly name = 'NotARecordError';
}

/** `#field` placeholders of `expressions` mapped to their attributes (DynamoDB refuses unused names). */
export function namesOf(...expressions: (string | undefined)[]): Record<string, string> {
  const names: Record<string, string> = {};
  for (const expression of expressions) {
    for (const [placeholder, field] of expression?.matchAll(/#(\w+)/g) ?? []) {
      const attribute = ATTRIBUTE[field as Field];
      if (attribute === undefined) throw new Error(`unknown field ${placeholder} in a DynamoDB expression`);
      names[placeholder] = attribute;
    }
  }
  return names;
}

export function s(value: string): AttributeValue.SMember {
  return { S: value };
}

export function n(value: number): AttributeValue.NMember {
  return { N: String(value) };
}

/** The TTL value for a retention end: whole seconds, rounded up. */
export function ttlSeconds(expiresAtMs: number): AttributeValue.NMember {
  return n(Math.ceil(expiresAtMs / 1000));
}

/** The item's primary key for `key`. */
export function keyOf(key: string): Item {
  return { [ATTRIBUTE.key]: s(key) };
}

/** The whole item for `record`. */
export function itemOf(record: IdempotencyRecord): Item {
  const item: Item = {
    [ATTRIBUTE.key]: s(record.key),
    [ATTRIBUTE.fingerprint]: s(record.fingerprint),
    [ATTRIBUTE.state]: s(record.state),
    [ATTRIBUTE.token]: s(record.token),
    [ATTRIBUTE.leaseExpiresAtMs]: n(record.leaseExpiresAtMs),
    [ATTRIBUTE.expiresAtMs]: n(record.expiresAtMs),
    [ATTRIBUTE.createdAtMs]: n(record.createdAtMs),
    [ATTRIBUTE.updatedAtMs]: n(record.updatedAtMs),
    [ATTRIBUTE.attempts]: n(record.attempts),
    [ATTRIBUTE.expiresAtSeconds]: ttlSeconds(record.expiresAtMs),
  };
  if (record.result !== null) item[ATTRIBUTE.result] = { B: record.result };
  return item;
}

/** The record an item holds. Throws `NotARecordError` when a field is missing or of another type. */
export function recordOf(item: Item): IdempotencyRecord {
  const state = text(item, 'state');
  if (state !== 'in_progress' && state !== 'completed') throw notARecord(item, 'state');
  const result = item[ATTRIBUTE.result];
  let bytes: Uint8Array | null = null;
  if (result !== undefined) {
    if (!(result.B instanceof Uint8Array)) throw notARecord(item, 'result');
    bytes = result.B;
  }
  return {
    key: text(item, 'key'),
    fingerprint: text(item, 'fingerprint'),
    state: state satisfies RecordState,
    token: text(item, 'token'),
    leaseExpiresAtMs: number(item, 'leaseExpiresAtMs'),
    expiresAtMs: number(item, 'expiresAtMs'),
    result: bytes,
    createdAtMs: number(item, 'createdAtMs'),
    updatedAtMs: number(item, 'updatedAtMs'),
    attempts: number(item, 'attempts'),
  };
}

function text(item: Item, field: Field): string {
  const value = item[ATTRIBUTE[field]];
  if (typeof value?.S !== 'string') throw notARecord(item, field);
  return value.S;
}

function number(item: Item, field: Field): number {
  const value = item[ATTRIBUTE[field]];
  const parsed = typeof value?.N === 'string' ? Number(value.N) : Number.NaN;
  if (!Number.isSafeInteger(parsed)) throw notARecord(item, field);
  return parsed;
}

function notARecord(item: Item, field: Field): NotARecordError {
  const key = item[ATTRIBUTE.key]?.S;
  const where = key === undefined ? '' : ` (pk ${JSON.stringify(key)})`;
  return new NotARecordError(`an item${where} has no valid ${ATTRIBUTE[field]} attribute: it is not an Idem record`);
}
