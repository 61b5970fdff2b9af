/**
 * `idem/messaging`: exactly-once effects over at-least-once delivery. The inbox (a consumer that
 * processes each message once), its RabbitMQ and NATS JetStream adapters, guards for BullMQ and
 * pg-boss jobs, and the transactional outbox with its relay (docs/messaging.md).
 */

export {
  type AmqpChannelLike,
  type AmqpConsumer,
  type AmqpConsumingChannelLike,
  type AmqpHandlerOptions,
  type AmqpMessageHandler,
  type AmqpSettlement,
  amqpHandler,
  type ConsumeAmqpOptions,
  consumeAmqp,
} from './amqp/amqp-consumer.js';
export {
  type AmqpConfirmChannelLike,
  type AmqpPublisherOptions,
  type AmqpPublishProperties,
  type AmqpReturnedMessage,
  amqpPublisher,
} from './amqp/amqp-publisher.js';
export {
  type ConsumeOutcome,
  consumeOnce,
  DEFAULT_INBOX_RETENTION_MS,
  Inbox,
  type InboxContext,
  type InboxMessage,
  type InboxOptions,
} from './inbox.js';
export type { ConsumerInbox } from './inbox-delivery.js';
export {
  type ConsumeJetStreamOptions,
  consumeJetStream,
  type JetStreamConsumer,
  type JetStreamConsumerLike,
  type JetStreamHandlerOptions,
  type JetStreamMessageHandler,
  type JetStreamSettlement,
  jetStreamHandler,
  NATS_MSG_ID_HEADER,
} from './jetstream/jetstream-consumer.js';
export {
  type JetStreamLike,
  type JetStreamPublisherOptions,
  type JetStreamPublishOptionsLike,
  jetstreamPublisher,
  type NatsHeadersLike,
} from './jetstream/jetstream-publisher.js';
export {
  type BullJobLike,
  type BullJobProcessor,
  type GuardedBullProcessor,
  guardBullProcessor,
} from './jobs/bullmq-guard.js';
export type { JobGuardOptions } from './jobs/job-guard.js';
export {
  type GuardedPgBossHandler,
  guardPgBossHandler,
  type PgBossJobHandler,
  type PgBossJobLike,
} from './jobs/pg-boss-guard.js';
export {
  type MysqlOutboxConnectionLike,
  type MysqlOutboxOptions,
  type MysqlOutboxPooledConnectionLike,
  type MysqlOutboxPoolLike,
  type MysqlOutboxQuery,
  mysqlOutbox,
} from './outbox/mysql-outbox.js';
export type {
  DeadMessage,
  OutboxCounts,
  OutboxMessage,
  OutboxPublisher,
  OutboxStore,
  PendingMessage,
  PublishResult,
  RelayPassInput,
  RelayPassResult,
} from './outbox/outbox.js';
export { OutboxLimits } from './outbox/outbox-rules.js';
export {
  type PgOutboxClientLike,
  type PgOutboxPooledClientLike,
  type PgOutboxPoolLike,
  type PgOutboxResultLike,
  type PostgresOutboxOptions,
  postgresOutbox,
} from './outbox/postgres-outbox.js';
export {
  OutboxRelay,
  type OutboxRelayOptions,
  type RelayBackoff,
  type RelayCleanup,
} from './outbox/relay.js';
export {
  type SqliteOutbox,
  type SqliteOutboxDatabaseLike,
  type SqliteOutboxOptions,
  type SqliteOutboxStatementLike,
  sqliteOutbox,
} from './outbox/sqlite-outbox.js';
export { SqlInbox, type SqlInboxContext, type SqlInboxOptions } from './sql-inbox.js';
