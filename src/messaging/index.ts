/**
 * `idem/messaging`: exactly-once effects over at-least-once delivery. The inbox (a consumer that
 * processes each message once), its RabbitMQ and NATS JetStream adapters, guards for BullMQ and
 * pg-boss jobs, and the transactional outbox with its relay (docs/messaging.md).
 */

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
export {
  type JetStreamLike,
  type JetStreamPublisherOptions,
  type JetStreamPublishOptionsLike,
  jetstreamPublisher,
  type NatsHeadersLike,
} from './jetstream/jetstream-publisher.js';
export {
  OutboxRelay,
  type OutboxRelayOptions,
  type RelayBackoff,
  type RelayCleanup,
} from './outbox/relay.js';
