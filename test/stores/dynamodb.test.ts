import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { CreateTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import type { ClaimInput } from '../../src/core/store.js';
import { DYNAMODB_MAX_RESULT_BYTES, DynamoDbStore } from '../../src/stores/dynamodb/index.js';
import { runStoreConformance } from '../../src/testing/index.js';
import { dropTable, dynamoDbConnection, testClient } from './dynamodb.factory.js';

runStoreConformance({
  name: 'dynamodb',
  factoryModule: new URL('./dynamodb.factory.ts', import.meta.url).href,
  skip: {
    binary:
      'a DynamoDB item holds 400 KB, so the 1 MiB result cannot fit; dynamodb.test.ts round-trips every byte value and the largest result the store declares (maxResultBytes)',
  },
});

const HOUR_MS = 3_600_000;
const client = testClient();
const tables: string[] = [];
after(async () => {
  for (const table of tables) await dropTable(table);
  client.destroy();
});

/** A fresh table name, dropped after the tests. */
function freshTable(): string {
  const table = `idem_ddb_${randomBytes(5).toString('hex')}`;
  tables.push(table);
  return table;
}

/** A store on a fresh table, created on first use. */
function freshStore(): DynamoDbStore {
  return new DynamoDbStore({ ...dynamoDbConnection, table: freshTable(), createTable: true });
}

function claimInput(key: string, token: string, nowMs: number, leaseMs = 30_000): ClaimInput {
  return { key, fingerprint: 'fp', token, nowMs, leaseExpiresAtMs: nowMs + leaseMs, expiresAtMs: nowMs + HOUR_MS };
}

function isCode(code: ErrorCode, message?: RegExp) {
  return (error: unknown) => {
    assert.ok(isIdempotencyError(error, code), `expected ${code}, got ${String(error)}`);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  };
}

describe('dynamodb store', () => {
  it('refuses a bad table name, own-client options beside a client, and bad timeouts', () => {
    for (const table of ['ab', 'a b', 'x/y', 'a'.repeat(256)]) {
      assert.throws(() => new DynamoDbStore({ table }), isCode(ErrorCode.INVALID_OPTIONS, /table name/), table);
    }
    assert.throws(
      () => new DynamoDbStore({ client, region: 'us-east-1', endpoint: 'http://127.0.0.1:4567' }),
      isCode(ErrorCode.INVALID_OPTIONS, /region, endpoint configure the store's own client/),
    );
    assert.throws(
      () => new DynamoDbStore({ requestTimeoutMs: 0 }),
      isCode(ErrorCode.INVALID_OPTIONS, /requestTimeoutMs/),
    );
  });

  it('round-trips every byte value, an empty result, and the largest result beside the longest key, fingerprint and token', async () => {
    const store = freshStore();
    const t = Date.now();
    const everyByte = new Uint8Array(512).map((_, i) => i % 256);
    const largest = new Uint8Array(randomBytes(DYNAMODB_MAX_RESULT_BYTES));
    const long = (c: string) => c.repeat(255);
    const cases = [
      { key: 'every-byte', token: 'a', fingerprint: 'fp', result: everyByte },
      { key: 'empty', token: 'a', fingerprint: 'fp', result: new Uint8Array(0) },
      { key: long('k'), token: long('t'), fingerprint: long('f'), result: largest },
    ];
    try {
      assert.equal(store.maxResultBytes, DYNAMODB_MAX_RESULT_BYTES);
      for (const { key, token, fingerprint, result } of cases) {
        assert.equal((await store.claim({ ...claimInput(key, token, t), fingerprint })).claimed, true);
        assert.equal(await store.complete({ key, token, result, nowMs: t, expiresAtMs: t + HOUR_MS }), true);
        const back = await store.get(key);
        assert.ok(back?.result instanceof Uint8Array, `${key.slice(0, 10)} comes back as bytes`);
        assert.ok(Buffer.from(back.result).equals(Buffer.from(result)), `${key.slice(0, 10)} bytes`);
      }
    } finally {
      await store.close();
    }
  });

  it('refuses a result over maxResultBytes with RESULT_TOO_LARGE that says what to set, and keeps the claim', async () => {
    const store = freshStore();
    const t = Date.now();
    try {
      await store.claim(claimInput('k', 'a', t));
      const result = new Uint8Array(DYNAMODB_MAX_RESULT_BYTES + 1);
      await assert.rejects(
        store.complete({ key: 'k', token: 'a', result, nowMs: t, expiresAtMs: t + HOUR_MS }),
        isCode(ErrorCode.RESULT_TOO_LARGE, /set maxResultBytes to 405504 or less/),
      );
      assert.equal((await store.get('k'))?.state, 'in_progress');
    } finally {
      await store.close();
    }
  });

  it('writes the TTL attribute in seconds, rounded up, and moves it with completion and extension', async () => {
    const table = freshTable();
    const store = new DynamoDbStore({ ...dynamoDbConnection, table, createTable: true });
    const ttlOf = async () => {
      const { Item } = await client.send(new GetItemCommand({ TableName: table, Key: { pk: { S: 'k' } } }));
      return Number(Item?.expiresAtSeconds?.N);
    };
    try {
      const t = 1_700_000_000_000;
      await store.claim({ ...claimInput('k', 'a', t), expiresAtMs: t + 1001 });
      assert.equal(await ttlOf(), t / 1000 + 2);
      await store.extend({ key: 'k', token: 'a', nowMs: t, leaseExpiresAtMs: t + 5000, expiresAtMs: t + 9000 });
      assert.equal(await ttlOf(), t / 1000 + 9);
      // An extension that asks for less keeps the later retention, and its TTL.
      await store.extend({ key: 'k', token: 'a', nowMs: t, leaseExpiresAtMs: t + 6000, expiresAtMs: t + 2000 });
      assert.equal(await ttlOf(), t / 1000 + 9);
      const result = new Uint8Array([1]);
      await store.complete({ key: 'k', token: 'a', result, nowMs: t, expiresAtMs: t + 60_500 });
      assert.equal(await ttlOf(), t / 1000 + 61);
    } finally {
      await store.close();
    }
  });

  it('lets exactly one of many concurrent callers take over an ended lease, keeping createdAtMs', async () => {
    const store = freshStore();
    const t = Date.now();
    try {
      await store.claim(claimInput('k', 'crashed', t, 1000));
      const outcomes = await Promise.all(
        Array.from({ length: 40 }, (_, i) => store.claim(claimInput('k', `t-${i}`, t + 1000))),
      );
      const winners = outcomes.filter((outcome) => outcome.claimed);
      assert.equal(winners.length, 1);
      const [winner] = winners;
      assert.equal(winner?.claimed && winner.takeover, true);
      assert.equal(winner?.record.attempts, 2);
      assert.equal(winner?.record.createdAtMs, t);
      for (const outcome of outcomes) assert.equal(outcome.record.token, winner?.record.token);
    } finally {
      await store.close();
    }
  });

  it('answers a refused claim from the record DynamoDB returns with the refusal, without reading it again', async () => {
    // dynalite ignores ReturnValuesOnConditionCheckFailure; this client adds the item to the
    // refusal as DynamoDB does (read from the same server), and counts the store's own reads.
    const raw = testClient();
    let reads = 0;
    const returningClient = {
      async send(command: object): Promise<unknown> {
        if (command instanceof GetItemCommand) reads += 1;
        try {
          return await raw.send(command as PutItemCommand);
        } catch (error) {
          if (command instanceof PutItemCommand && (error as Error).name === 'ConditionalCheckFailedException') {
            const { TableName, Item } = command.input;
            const current = await raw.send(new GetItemCommand({ TableName, Key: { pk: Item?.pk ?? { S: '' } } }));
            Object.assign(error as object, { Item: current.Item });
          }
          throw error;
        }
      },
    };
    const store = new DynamoDbStore({ client: returningClient, table: freshTable(), createTable: true });
    const t = Date.now();
    try {
      await store.claim(claimInput('k', 'a', t));
      const second = await store.claim(claimInput('k', 'b', t + 1));
      assert.equal(second.claimed, false);
      assert.equal(second.record.token, 'a');
      assert.equal(reads, 0);
    } finally {
      await store.close();
      raw.destroy();
    }
  });

  it('fails with STORE_MISCONFIGURED, saying how to create it, when the table is missing and createTable is off', async () => {
    const table = freshTable();
    const store = new DynamoDbStore({ ...dynamoDbConnection, table });
    try {
      const missing = new RegExp(
        `the table ${table} does not exist in this region: create it .*or pass createTable: true`,
      );
      await assert.rejects(store.ping(), isCode(ErrorCode.STORE_MISCONFIGURED, missing));
      await assert.rejects(
        store.claim(claimInput('k', 'a', Date.now())),
        isCode(ErrorCode.STORE_MISCONFIGURED, missing),
      );
    } finally {
      await store.close();
    }
  });

  it('refuses a table with another key, and items it did not write, with STORE_MISCONFIGURED', async () => {
    const table = freshTable();
    await client.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      }),
    );
    const created = new DynamoDbStore({ ...dynamoDbConnection, table, createTable: true });
    const given = new DynamoDbStore({ ...dynamoDbConnection, table });
    try {
      await assert.rejects(created.ping(), isCode(ErrorCode.STORE_MISCONFIGURED, /has the key id \(HASH\)/));
      const anotherKey = /has another key: the store needs a partition key `pk`/;
      await assert.rejects(given.get('k'), isCode(ErrorCode.STORE_MISCONFIGURED, anotherKey));
      await assert.rejects(
        given.claim(claimInput('k', 'a', Date.now())),
        isCode(ErrorCode.STORE_MISCONFIGURED, anotherKey),
      );
    } finally {
      await created.close();
      await given.close();
    }

    const foreign = freshStore();
    try {
      await foreign.ping();
      const foreignTable = tables.at(-1) ?? '';
      await client.send(
        new PutItemCommand({ TableName: foreignTable, Item: { pk: { S: 'k' }, colour: { S: 'blue' } } }),
      );
      await assert.rejects(
        foreign.get('k'),
        isCode(ErrorCode.STORE_MISCONFIGURED, /give the store a table of its own/),
      );
    } finally {
      await foreign.close();
    }
  });

  it('rejects promptly with STORE_UNAVAILABLE when nothing listens on the endpoint', async () => {
    const store = new DynamoDbStore({ ...dynamoDbConnection, endpoint: 'http://127.0.0.1:1', table: 'idem' });
    const startMs = Date.now();
    try {
      await assert.rejects(store.claim(claimInput('k', 'a', Date.now())), isCode(ErrorCode.STORE_UNAVAILABLE));
      assert.ok(Date.now() - startMs < 5000, `took ${Date.now() - startMs} ms`);
    } finally {
      await store.close();
    }
  });

  it('leaves a client it was given open on close, calls a lazy factory once, and refuses a factory that gives no client', async () => {
    const own = new DynamoDBClient(dynamoDbConnection);
    let calls = 0;
    const store = new DynamoDbStore({
      table: freshTable(),
      createTable: true,
      client: () => {
        calls += 1;
        return own;
      },
    });
    assert.equal(calls, 0, 'the factory waits for first use');
    await store.claim(claimInput('a', 't', Date.now()));
    await store.get('a');
    await store.close();
    assert.equal(calls, 1);
    await own.send(new GetItemCommand({ TableName: tables.at(-1), Key: { pk: { S: 'a' } } }));
    own.destroy();

    const wrong = new DynamoDbStore({ client: () => ({}) as DynamoDBClient });
    await assert.rejects(wrong.get('k'), isCode(ErrorCode.INVALID_OPTIONS, /must be a DynamoDBClient/));
  });

  it('refuses a list limit out of range and an empty cursor with INVALID_OPTIONS', async () => {
    const store = new DynamoDbStore({ ...dynamoDbConnection });
    for (const limit of [0, -1, 1.5, 1001]) {
      await assert.rejects(store.list({ limit }), isCode(ErrorCode.INVALID_OPTIONS, /list limit/), String(limit));
    }
    await assert.rejects(store.list({ cursor: '' }), isCode(ErrorCode.INVALID_OPTIONS, /cursor/));
    await assert.rejects(store.sweep(Date.now(), 0), isCode(ErrorCode.INVALID_OPTIONS, /sweep limit/));
    await store.close();
  });
});
