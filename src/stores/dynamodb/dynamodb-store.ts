import type * as Sdk from '@aws-sdk/client-dynamodb';
import { ErrorCode, IdempotencyError, type Store } from '../../core/index.js';
import {
  type ClaimInput,
  type ClaimResult,
  type CompleteInput,
  checkGetManyKeys,
  decideClaim,
  type ExtendInput,
  freshRecord,
  type IdempotencyRecord,
  invalidOptions,
  isExpired,
  type ListOptions,
  type ListPage,
  type OwnClient,
  recordsInOrder,
  StoreOperations,
} from '../../store-kit/index.js';
import { readMany } from './batch-read.js';
import { type Connection, type DynamoDbClientLike, isConditionFailure, loadSdk } from './connection.js';
import { dynamoDbMisconfiguration } from './errors.js';
import { type Item, keyOf, recordOf } from './record-item.js';
import * as requests from './requests.js';
import { ensureTable } from './table.js';

/** AWS credentials for the store's own client. */
export interface DynamoDbCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** For temporary credentials. */
  sessionToken?: string;
}

export interface DynamoDbStoreOptions {
  /**
   * A client you manage (`new DynamoDBClient(...)` from `@aws-sdk/client-dynamodb`), or a function
   * that returns one (called on first use, and again only if it threw). `close()` leaves it open.
   * Without it the store opens its own client from `region`, `endpoint` and `credentials` (each
   * falling back on the AWS SDK's usual sources: AWS_REGION, the IAM role...), and `close()` ends it.
   */
  client?: DynamoDbClientLike | (() => DynamoDbClientLike | Promise<DynamoDbClientLike>);
  /** Own client only: the AWS region (`eu-west-1`). Default: the SDK's (AWS_REGION in Lambda). */
  region?: string;
  /** Own client only: the endpoint URL, for DynamoDB Local or dynalite (`http://127.0.0.1:4567`). Default: AWS's. */
  endpoint?: string;
  /** Own client only: fixed credentials. Default: the SDK's chain (environment, IAM role...). */
  credentials?: DynamoDbCredentials;
  /** Own client only: how long to wait for a connection, in ms. Default 3000. */
  connectTimeoutMs?: number;
  /** Own client only: how long to wait for one request's answer, in ms. Default 5000. */
  requestTimeoutMs?: number;
  /**
   * The table of records: 3 to 255 letters, digits, `_`, `-` or `.`, with a partition key `pk` of
   * type S and no sort key (see docs/dynamodb.md). Default `idem`.
   */
  table?: string;
  /**
   * Creates the table on first use when it is missing (on-demand capacity, TTL on
   * `expiresAtSeconds`), and waits until it is ready. For development and tests; in production
   * create the table with your infrastructure code, and the store needs no CreateTable permission.
   * Default false: a missing table fails with `STORE_MISCONFIGURED` that says how to create it.
   */
  createTable?: boolean;
}

/**
 * The largest result a record holds, in bytes: a DynamoDB item is at most 400 KB (409,600 bytes,
 * attribute names included); 4 KiB are kept for the rest of the record (key, fingerprint and
 * token of up to 255 bytes each, numbers, attribute names), which needs about 1.2 KiB.
 */
export const DYNAMODB_MAX_RESULT_BYTES = 400 * 1024 - 4 * 1024;

const STORE_NAME = 'dynamodb';
const TABLE_PATTERN = /^[A-Za-z0-9_.-]{3,255}$/;
const OWN_CLIENT_OPTIONS = ['region', 'endpoint', 'credentials', 'connectTimeoutMs', 'requestTimeoutMs'] as const;
/** How often a claim looks again at a record that changed between its write and its read. */
const MAX_CLAIM_ROUNDS = 10;
/** Most conditional deletes a sweep has in flight at once. */
const SWEEP_PARALLEL = 16;
const MAX_LIST_LIMIT = 1000;

/**
 * A store in Amazon DynamoDB, for Lambda functions and anything else on AWS. One item per record;
 * every change is one conditional write, so each is atomic: a claim is a `PutItem` that wins only
 * where no live record stands (and, for a takeover, an `UpdateItem` guarded by the token it saw);
 * complete, extend and release hold only while the caller's token does. DynamoDB's own TTL drops
 * expired records; a record past its retention counts as absent before that.
 *
 * @example
 * ```ts
 * import { idempotent } from 'idem';
 * import { DynamoDbStore } from 'idem/dynamodb';
 *
 * // Own client, from AWS_REGION and the function's IAM role; the table comes from your infrastructure code:
 * const store = new DynamoDbStore({ table: 'payments-idem' });
 * const charge = idempotent(chargeCard, { store, name: 'charge', key: (req) => req.id });
 *
 * // Locally, against dynalite or DynamoDB Local, creating the table on first use:
 * const local = new DynamoDbStore({ endpoint: 'http://127.0.0.1:4567', region: 'us-east-1', createTable: true });
 * ```
 */
export class DynamoDbStore implements Store {
  readonly name = STORE_NAME;
  /** The largest result this store keeps, in bytes (`DYNAMODB_MAX_RESULT_BYTES`): DynamoDB items hold 400 KB. */
  readonly maxResultBytes = DYNAMODB_MAX_RESULT_BYTES;
  readonly #options: DynamoDbStoreOptions;
  readonly #table: string;
  readonly #ops: StoreOperations<Connection>;

  constructor(options: DynamoDbStoreOptions = {}) {
    const table = options.table ?? 'idem';
    if (typeof table !== 'string' || !TABLE_PATTERN.test(table)) {
      throw invalidOptions(
        STORE_NAME,
        `the table name ${JSON.stringify(table)} is not allowed: use 3 to 255 letters, digits, '_', '-' or '.'.`,
      );
    }
    if (options.client !== undefined) {
      const own = OWN_CLIENT_OPTIONS.filter((name) => options[name] !== undefined);
      if (own.length > 0) {
        throw invalidOptions(
          STORE_NAME,
          `${own.join(', ')} configure the store's own client: with \`client\`, configure your client instead and leave them out.`,
        );
      }
    }
    for (const name of ['connectTimeoutMs', 'requestTimeoutMs'] as const) {
      const value = options[name];
      if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
        throw invalidOptions(STORE_NAME, `${name} must be a positive number of ms.`);
      }
    }
    this.#options = options;
    this.#table = table;
    this.#ops = new StoreOperations<Connection>({
      store: STORE_NAME,
      className: 'DynamoDbStore',
      given: undefined, // a given client still needs the SDK module: #open handles both
      openOwn: () => this.#open(),
      ...(options.createTable === true ? { prepare: (connection: Connection) => ensureTable(connection, table) } : {}),
      misconfiguration: dynamoDbMisconfiguration(table),
    });
  }

  /**
   * Readiness check: creates the table first with `createTable`, then runs `DescribeTable`.
   * Rejects with `STORE_MISCONFIGURED` when the table is missing or has another key, or the
   * credentials or permissions are refused; `STORE_UNAVAILABLE` when DynamoDB cannot be reached.
   */
  async ping(): Promise<void> {
    await this.#ops.run('ping', async ({ client, sdk }) => {
      await client.send(new sdk.DescribeTableCommand({ TableName: this.#table }));
    });
  }

  async claim(input: ClaimInput): Promise<ClaimResult> {
    return this.#ops.run('claim', async (connection) => {
      for (let round = 0; round < MAX_CLAIM_ROUNDS; round++) {
        const answer = await this.#claimRound(connection, input);
        if (answer !== undefined) return answer;
      }
      throw new Error(`the record changed under ${MAX_CLAIM_ROUNDS} claims in a row`);
    });
  }

  /**
   * One try: write a fresh record where none stands; else decide on the record the refusal
   * returned and take it over if the rule allows. `undefined`: the record changed in between
   * (released, expired, taken over or completed by another caller), so look again.
   */
  async #claimRound(connection: Connection, input: ClaimInput): Promise<ClaimResult | undefined> {
    const seen = await this.#claimFresh(connection, input);
    if (seen === 'won') return { claimed: true, takeover: false, record: freshRecord(input) };
    if (seen === undefined) return undefined;
    const answer = decideClaim(seen, input);
    if (!answer.claimed) return answer;
    if (!answer.takeover) return undefined; // it expired since the write was refused: the fresh write wins now
    const taken = await this.#takeOver(connection, input, seen);
    return taken === undefined ? undefined : { claimed: true, takeover: true, record: taken };
  }

  async complete(input: CompleteInput): Promise<boolean> {
    return this.#ops.run('complete', async ({ client, sdk }) => {
      if (input.result.byteLength > this.maxResultBytes) {
        throw new IdempotencyError(
          ErrorCode.RESULT_TOO_LARGE,
          `[idem] [dynamodb] a result of ${input.result.byteLength} bytes does not fit in a DynamoDB item (at most ${this.maxResultBytes}): set maxResultBytes to ${this.maxResultBytes} or less, so larger outcomes are recorded as too large.`,
          { key: input.key },
        );
      }
      return conditional(client.send(new sdk.UpdateItemCommand(requests.complete(this.#table, input))));
    });
  }

  async release(key: string, token: string): Promise<boolean> {
    return this.#ops.run('release', ({ client, sdk }) =>
      conditional(client.send(new sdk.DeleteItemCommand(requests.release(this.#table, key, token)))),
    );
  }

  async extend(input: ExtendInput): Promise<boolean> {
    return this.#ops.run('extend', async ({ client, sdk }) => {
      const raising = new sdk.UpdateItemCommand(requests.extend(this.#table, input, true));
      if (await conditional(client.send(raising))) return true;
      // Refused: the token no longer holds, or the record's retention ends later than asked (keep it).
      return conditional(client.send(new sdk.UpdateItemCommand(requests.extend(this.#table, input, false))));
    });
  }

  async get(key: string, nowMs?: number): Promise<IdempotencyRecord | null> {
    return this.#ops.run('get', async (connection) => {
      const record = await this.#read(connection, key);
      if (record === undefined || (nowMs !== undefined && isExpired(record, nowMs))) return null;
      return record;
    });
  }

  /** BatchGetItem, strongly consistent, 100 keys a request (`batch-read.ts`). */
  async getMany(keys: readonly string[], nowMs?: number): Promise<(IdempotencyRecord | null)[]> {
    return this.#ops.run('getMany', async (connection) => {
      const unique = [...new Set(checkGetManyKeys(STORE_NAME, keys))];
      if (unique.length === 0) return [];
      return recordsInOrder(keys, await readMany(connection, this.#table, unique), (record) => record, nowMs);
    });
  }

  async delete(key: string): Promise<boolean> {
    return this.#ops.run('delete', async ({ client, sdk }) => {
      const answer = await client.send(new sdk.DeleteItemCommand(requests.remove(this.#table, key)));
      return answer.Attributes !== undefined;
    });
  }

  /**
   * Pages through records in DynamoDB's scan order (by hash of key, not by key). The cursor is the
   * last key of the page: the scan goes on after it, so a record that exists for the whole
   * listing is never skipped. Each page reads until it has seen one record past `limit`, so a
   * page with a cursor is full and the last page has none.
   */
  async list(options: ListOptions = {}): Promise<ListPage> {
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw invalidOptions(STORE_NAME, `list limit must be a whole number from 1 to ${MAX_LIST_LIMIT}, got ${limit}.`);
    }
    if (options.cursor !== undefined && (typeof options.cursor !== 'string' || options.cursor === '')) {
      throw invalidOptions(STORE_NAME, "list cursor must be a previous page's nextCursor, a non-empty string.");
    }
    return this.#ops.run('list', async ({ client, sdk }) => {
      const records: IdempotencyRecord[] = [];
      let start: Item | undefined = options.cursor === undefined ? undefined : keyOf(options.cursor);
      do {
        const wanted = limit + 1 - records.length;
        const page = await client.send(new sdk.ScanCommand(requests.listPage(this.#table, options, start, wanted)));
        for (const item of page.Items ?? []) records.push(recordOf(item));
        start = page.LastEvaluatedKey;
      } while (records.length <= limit && start !== undefined);
      if (records.length <= limit) return { records, nextCursor: undefined };
      const onPage = records.slice(0, limit);
      return { records: onPage, nextCursor: onPage.at(-1)?.key };
    });
  }

  /**
   * Scans for records whose retention has ended and deletes each one that still has, up to
   * `limit`. Optional on DynamoDB, whose TTL drops them by itself (within a few days); it reads
   * the whole table, so run it seldom, if at all.
   */
  async sweep(nowMs: number, limit = 1000): Promise<number> {
    if (!Number.isInteger(limit) || limit < 1) {
      throw invalidOptions(STORE_NAME, `sweep limit must be a whole number of at least 1, got ${limit}.`);
    }
    return this.#ops.run('sweep', async ({ client, sdk }) => {
      let deleted = 0;
      let start: Item | undefined;
      do {
        const page = await client.send(new sdk.ScanCommand(requests.sweepPage(this.#table, nowMs, start)));
        const keys = page.Items ?? []; // each item holds its key alone (the projection)
        while (keys.length > 0 && deleted < limit) {
          const batch = keys.splice(0, Math.min(SWEEP_PARALLEL, limit - deleted));
          const outcomes = await Promise.all(
            batch.map((key) =>
              conditional(client.send(new sdk.DeleteItemCommand(requests.sweepOne(this.#table, key, nowMs)))),
            ),
          );
          deleted += outcomes.filter(Boolean).length;
        }
        start = page.LastEvaluatedKey;
      } while (deleted < limit && start !== undefined);
      return deleted;
    });
  }

  /** Ends the client the store opened itself; a client passed in stays open. */
  close(): Promise<void> {
    return this.#ops.close();
  }

  /**
   * Writes a fresh record where none stands: `'won'`, or the record that stands (from the refusal
   * itself on DynamoDB; read back on emulators that do not return it), or `undefined` when that
   * read finds none (released or deleted meanwhile).
   */
  async #claimFresh(connection: Connection, input: ClaimInput): Promise<IdempotencyRecord | undefined | 'won'> {
    try {
      await connection.client.send(new connection.sdk.PutItemCommand(requests.claimFresh(this.#table, input)));
      return 'won';
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return error.Item === undefined ? this.#read(connection, input.key) : recordOf(error.Item);
    }
  }

  /** Takes over `seen`, an in-progress record whose lease ended: the new record, or `undefined` if it changed first. */
  async #takeOver(
    { client, sdk }: Connection,
    input: ClaimInput,
    seen: IdempotencyRecord,
  ): Promise<IdempotencyRecord | undefined> {
    try {
      const answer = await client.send(new sdk.UpdateItemCommand(requests.takeOver(this.#table, input, seen.token)));
      if (answer.Attributes === undefined) throw new Error('UpdateItem with ReturnValues ALL_NEW returned no item');
      return recordOf(answer.Attributes);
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  /** The record under `key`, read strongly consistent, whatever its expiry; `undefined` when there is none. */
  async #read({ client, sdk }: Connection, key: string): Promise<IdempotencyRecord | undefined> {
    const answer = await client.send(new sdk.GetItemCommand(requests.read(this.#table, key)));
    return answer.Item === undefined ? undefined : recordOf(answer.Item);
  }

  async #open(): Promise<OwnClient<Connection>> {
    const sdk = await loadSdk();
    const given = this.#options.client;
    if (given !== undefined) {
      const client = typeof given === 'function' ? await given() : given;
      if (typeof (client as Partial<DynamoDbClientLike> | undefined)?.send !== 'function') {
        throw invalidOptions(STORE_NAME, '`client` must be a DynamoDBClient from @aws-sdk/client-dynamodb (v3).');
      }
      // The caller's client: the store only sends the SDK's own commands through it.
      return { client: { client: client as Sdk.DynamoDBClient, sdk }, end: async () => {} };
    }
    const { region, endpoint, credentials } = this.#options;
    const client = new sdk.DynamoDBClient({
      ...(region === undefined ? {} : { region }),
      ...(endpoint === undefined ? {} : { endpoint }),
      ...(credentials === undefined ? {} : { credentials }),
      requestHandler: {
        connectionTimeout: this.#options.connectTimeoutMs ?? 3000,
        requestTimeout: this.#options.requestTimeoutMs ?? 5000,
      },
    });
    return { client: { client, sdk }, end: async () => client.destroy() };
  }
}

/** True when the conditional write `sent` was done, false when its condition was refused. */
async function conditional(sent: Promise<unknown>): Promise<boolean> {
  try {
    await sent;
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}
