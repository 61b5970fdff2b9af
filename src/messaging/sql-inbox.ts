/**
 * The atomic inbox: the handler's SQL writes and the message's inbox row commit in ONE transaction
 * of the user's database. There is no window between the effect and the record: a consumer killed
 * at any moment either committed both (a redelivery is a duplicate) or neither (it runs again).
 * The rows are those of an atomic workflow step (`postgresSteps`, `sqliteSteps`, `mysqlSteps`),
 * keyed by the message's inbox key, so one table and one set of tested statements serve both faces.
 */
import { deserialize, serialize } from 'node:v8';
import { fingerprintOf } from '../core/canonical.js';
import { ErrorCode, IdempotencyError } from '../core/errors.js';
import { storeKeyOf, validateKey } from '../core/keys.js';
import { defaultSerializer, type ValueSerializer } from '../core/value-codec.js';
import type { StepDatabase } from '../workflow/sql/step-database.js';
import { type ConsumeOutcome, INBOX_NAMESPACE, type InboxMessage } from './inbox.js';

export interface SqlInboxOptions<Tx> {
  /**
   * Where the inbox rows live, in the same database as the handler's writes: `postgresSteps(pool)`,
   * `sqliteSteps(db)` or `mysqlSteps(pool)` from `idem/workflow`. Give the inbox a table of its own
   * (`{ table: 'idem_inbox' }`) so its sweep does not touch workflow steps.
   */
  database: StepDatabase<Tx>;
  /** The consumer's name (1 to 200 characters): its message ids are apart from other consumers'. */
  consumer: string;
  /** How the handler's return value is stored and replayed to redeliveries. Default: `defaultSerializer` (JSON when it round-trips exactly, else a v8 structured clone). */
  serializer?: ValueSerializer<unknown>;
}

/** What the handler of an atomic inbox can read. */
export interface SqlInboxContext {
  /** The message id. */
  id: string;
  /** The message's inbox key: stable across redeliveries. */
  key: string;
}

/**
 * The recorded row: the payload's fingerprint (to tell a reused id) and the handler's value, null
 * when the serializer could not encode it.
 */
interface Row {
  fingerprint: string;
  value: Uint8Array | null;
}

/**
 * An inbox whose record commits in the handler's own transaction: exactly-once effects for
 * handlers whose effects are writes to that database.
 *
 * @example
 * ```ts
 * const inbox = new SqlInbox({ database: postgresSteps(pool, { table: 'idem_inbox' }), consumer: 'orders' });
 * await inbox.consume({ id: message.id }, async (tx) => {
 *   await tx.query('UPDATE stock SET count = count - 1 WHERE sku = $1', [message.sku]);
 * });
 * ```
 */
export class SqlInbox<Tx> {
  /** The consumer's name (the `consumer` option). */
  readonly consumer: string;
  readonly #database: StepDatabase<Tx>;
  readonly #serializer: ValueSerializer<unknown>;

  constructor(options: SqlInboxOptions<Tx>) {
    const { consumer, database } = options;
    if (typeof consumer !== 'string' || consumer === '' || consumer.length > 200) {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] [sql inbox] consumer must be a name of 1 to 200 characters, got ${JSON.stringify(consumer)}.`,
      );
    }
    if (typeof database?.runOnce !== 'function') {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        '[idem] [sql inbox] database must be a step database: postgresSteps(pool), sqliteSteps(db) or mysqlSteps(pool) from idem/workflow.',
      );
    }
    this.consumer = consumer;
    this.#database = database;
    this.#serializer = options.serializer ?? defaultSerializer;
  }

  /**
   * Runs `handler(tx)` and records the message in the same transaction, unless this consumer
   * recorded it already: `processed` (ran and committed), `duplicate` (committed before, by this or
   * another consumer process: its value replayed, or undefined when the serializer could not
   * encode or decode it; the handler not run) or `mismatch` (the id was
   * recorded with another payload). Never `in_progress`: two deliveries at once are serialized by
   * the database, and the loser answers `duplicate`. Throws what the handler throws, after rolling
   * its transaction back (the next delivery runs it again), and `STORE_UNAVAILABLE` when the
   * database cannot be reached.
   */
  async consume<T>(
    message: InboxMessage,
    handler: (tx: Tx, context: SqlInboxContext) => T | Promise<T>,
  ): Promise<ConsumeOutcome<T>> {
    if (typeof handler !== 'function') {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        '[idem] [sql inbox] consume(message, handler) needs a handler function.',
      );
    }
    const id = validateKey(message?.id);
    const key = storeKeyOf(INBOX_NAMESPACE, this.consumer, id);
    const fingerprint = fingerprintOf(message.payload === undefined ? null : message.payload);
    const serializer = this.#serializer as ValueSerializer<T>;
    let value: T | undefined;
    const outcome = await this.#database.runOnce(
      { runId: `inbox:${key}`, stepIndex: 0, name: `inbox ${this.consumer}` },
      async (tx) => {
        value = await handler(tx, { id, key });
        return serialize({ fingerprint, value: encodedOrNull(serializer, value) } satisfies Row);
      },
    );
    if (outcome.ran) return { kind: 'processed', value: value as T };
    const row = deserialize(outcome.data) as Row;
    if (row.fingerprint !== fingerprint) return { kind: 'mismatch' };
    return { kind: 'duplicate', value: decodedOrUndefined(serializer, row.value) };
  }

  /** Deletes inbox rows recorded before `beforeMs` (ms since epoch), at most `limit`; returns how many. */
  async sweep(beforeMs: number, limit?: number): Promise<number> {
    return await this.#database.sweep(beforeMs, limit);
  }
}

/**
 * The handler's value as bytes, or null when the serializer cannot encode it: its writes are done,
 * and failing the commit for the value would roll them back and run the handler again on every
 * redelivery, for ever.
 */
function encodedOrNull<T>(serializer: ValueSerializer<T>, value: T): Uint8Array | null {
  try {
    return serializer.encode(value);
  } catch {
    return null;
  }
}

/** The recorded value, or undefined when it was not stored or cannot be read back: the message is done either way. */
function decodedOrUndefined<T>(serializer: ValueSerializer<T>, bytes: Uint8Array | null): T | undefined {
  if (bytes === null) return undefined;
  try {
    return serializer.decode(bytes);
  } catch {
    return undefined;
  }
}
