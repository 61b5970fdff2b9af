/**
 * Where the test brokers are: the local RabbitMQ and NATS JetStream servers, or IDEM_AMQP_URL and
 * IDEM_NATS_URL. A test module that imports this file needs those servers (scripts/test.mjs reads
 * the variable names here to check them).
 */
export const amqpUrl = process.env.IDEM_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const natsUrl = process.env.IDEM_NATS_URL ?? '127.0.0.1:4222';
