/**
 * The transactional outbox: a message is written in the user's own transaction, beside the
 * business change, so it exists if and only if that change committed; a relay later publishes it
 * with a stable message id. `OutboxStore` is the contract the SQL outboxes (PostgreSQL, SQLite,
 * MySQL) implement and the relay drives; `OutboxPublisher` is what a broker adapter implements.
 */

/** A message to publish, as the application enqueues it. */
export interface OutboxMessage {
  /**
   * Where it goes: a RabbitMQ routing key (on the relay's exchange) or a JetStream subject.
   * 1 to 255 characters.
   */
  topic: string;
  /** The body: bytes, a string (UTF-8), or any JSON value (stored as its JSON text). */
  payload: Uint8Array | string | unknown;
  /**
   * The message id published with it (`message-id` on AMQP, `Nats-Msg-Id` on JetStream), for
   * consumers' inboxes and broker deduplication. 1 to 255 characters; default a random UUID.
   * Enqueuing an id that is in the outbox already changes nothing and returns the same id, so a
   * retried transaction cannot publish twice.
   */
  id?: string;
  /**
   * Ordering key: messages with the same key are published one at a time, in enqueue order, and
   * a later one waits while an earlier one is pending (retrying). Up to 255 characters; default none.
   */
  key?: string;
  /** Headers published with the message (string values). Default none. */
  headers?: Record<string, string>;
  /** Publish no earlier than this time (ms since epoch). Default: at once. */
  notBeforeMs?: number;
}

/** A message as the relay reads it from the outbox. */
export interface PendingMessage {
  /** The stable message id (see `OutboxMessage.id`). */
  id: string;
  /** The row's position in enqueue order (increasing). */
  seq: number;
  topic: string;
  /** The ordering key, or null. */
  key: string | null;
  /** The body's bytes (strings as UTF-8, JSON values as their JSON text). */
  payload: Uint8Array;
  headers: Record<string, string>;
  /** Failed publish attempts so far (0 on the first try). */
  attempts: number;
  /** When it was enqueued, ms since epoch. */
  createdAtMs: number;
}

/** What publishing one message came to. */
export type PublishResult = { ok: true } | { ok: false; error: string };

/** What one relay pass did. */
export interface RelayPassResult {
  /** Messages locked and handed to `publish`. */
  claimed: number;
  /** Marked published. */
  published: number;
  /** Failed and scheduled for another attempt. */
  failed: number;
  /** Failed for the last time: moved to the dead-letter state. */
  dead: number;
}

/** Input of one relay pass (see `OutboxStore.relay`). */
export interface RelayPassInput {
  /** Most messages to lock in this pass: a whole number from 1 to 1000. */
  limit: number;
  /** Now, ms since epoch: messages due by then are taken. */
  nowMs: number;
  /**
   * Publishes the messages (oldest first) and answers one result per message, in the same order.
   * Runs while the messages are locked, so no other relay publishes them at the same time.
   */
  publish(messages: readonly PendingMessage[]): Promise<readonly PublishResult[]>;
  /**
   * When a message that just failed (its `attempts` already counting this failure) should be tried
   * again, ms since epoch; `undefined` moves it to the dead-letter state.
   */
  retryAtMs(message: PendingMessage, attempts: number): number | undefined;
}

/** How many messages are in each state. */
export interface OutboxCounts {
  pending: number;
  published: number;
  dead: number;
}

/** A message in the dead-letter state, for operators. */
export interface DeadMessage extends PendingMessage {
  /** The last publish error. */
  lastError: string;
}

/**
 * An outbox table in the user's database. `Tx` is what the user's transaction runs statements on
 * (a `pg` client inside BEGIN, the `better-sqlite3` Database inside `db.transaction`, a `mysql2`
 * connection inside beginTransaction).
 */
export interface OutboxStore<Tx> {
  /** 'postgres' | 'sqlite' | 'mysql', for messages. */
  readonly dialect: string;
  /**
   * Writes the message in the caller's transaction `tx` and returns its id. Nothing is published
   * until that transaction commits; if it rolls back, the message never existed. An id already in
   * the outbox is left as it is (the same id is returned). Throws `INVALID_OPTIONS` for a bad
   * message (nothing written).
   */
  enqueue(tx: Tx, message: OutboxMessage): Promise<string>;
  /**
   * One relay pass, in one transaction: locks up to `limit` due pending messages that no other
   * relay holds (`FOR UPDATE SKIP LOCKED`, or the store's equivalent), taking for an ordering key
   * only its oldest pending message; calls `publish`; then marks each published, or failed
   * (attempts + 1, last error, next attempt at `retryAtMs`), or dead; and commits. A relay that
   * dies before the commit leaves the messages pending: they are published again (same ids).
   */
  relay(input: RelayPassInput): Promise<RelayPassResult>;
  /** Deletes published messages published before `beforeMs`, at most `limit` (default 1000); returns how many. */
  cleanup(beforeMs: number, limit?: number): Promise<number>;
  /** How many messages are pending, published and dead. */
  counts(): Promise<OutboxCounts>;
  /** Dead messages, oldest first, at most `limit` (default 100). */
  dead(limit?: number): Promise<DeadMessage[]>;
  /** Moves a dead message back to pending (attempts reset), due now; false if no dead message has that id. */
  revive(id: string): Promise<boolean>;
  /** Creates the table and its indexes if they do not exist. Called by every other method on first use. */
  ensureSchema(): Promise<void>;
  /** Ends the pool the outbox opened itself (not a pool the user passed). */
  close(): Promise<void>;
}

/** What a broker adapter implements for the relay. */
export interface OutboxPublisher {
  /** 'amqp' | 'jetstream' | ..., for messages. */
  readonly name: string;
  /**
   * Publishes each message with its id as the broker's message id, waiting for the broker's
   * confirmation; one result per message, in order. Never throws for one message's failure.
   */
  publish(messages: readonly PendingMessage[]): Promise<readonly PublishResult[]>;
  /** Closes what the publisher opened itself. */
  close?(): Promise<void>;
}
