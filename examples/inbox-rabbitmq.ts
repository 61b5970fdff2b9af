// A RabbitMQ consumer that books each payment once: the producer publishes one payment twice (a
// retried publish), the first consumer books a payment and dies before its ack (RabbitMQ
// redelivers it), and a message without an id is dead-lettered. The inbox lives in the embedded
// SQLite store. Needs RabbitMQ: IDEM_AMQP_URL, or amqp://guest:guest@127.0.0.1:5672.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { type AmqpChannelLike, amqpHandler, consumeAmqp, Inbox } from '../src/messaging/index.js';
import { SqliteStore } from '../src/stores/sqlite/index.js';

const url = process.argv[2] ?? process.env.IDEM_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const queue = `idem.example.payments.${randomBytes(3).toString('hex')}`;
const deadLetters = `${queue}.dlq`;

const dir = mkdtempSync(join(tmpdir(), 'idem-inbox-'));
const store = new SqliteStore({ path: join(dir, 'idem.db') });
const inbox = new Inbox({ store, consumer: 'ledger' });
const ledger: string[] = [];
const book = (message: { content: Buffer; properties: { messageId?: string } }) => {
  ledger.push(`${message.properties.messageId}: ${message.content.toString()}`);
};

const connection = await amqp.connect(url);
const admin = await connection.createChannel();
await admin.assertQueue(deadLetters, { durable: false });
await admin.assertQueue(queue, {
  durable: false,
  arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': deadLetters },
});
const publish = (body: string, messageId?: string) =>
  admin.sendToQueue(queue, Buffer.from(body), messageId === undefined ? {} : { messageId });

// The first consumer books pay-1 and dies before its ack reaches RabbitMQ.
const first = await amqp.connect(url);
const firstChannel = await first.createChannel();
const lostAck: AmqpChannelLike = { ack: () => {}, nack: (m, all, requeue) => firstChannel.nack(m, all, requeue) };
const booked = new Promise<void>((resolve) => {
  const onMessage = amqpHandler({ channel: lostAck, inbox, handler: book });
  void firstChannel.consume(queue, (message) => void onMessage(message).then(() => resolve()), { noAck: false });
});
publish('100 EUR', 'pay-1');
await booked;
await first.close();

// The consumer that stays: pay-1 comes back (redelivered), pay-2 comes twice, one has no id.
const channel = await connection.createChannel();
await channel.prefetch(10);
const settled: string[] = [];
const errors: string[] = [];
const consumer = await consumeAmqp(
  {
    ack: (message) => {
      settled.push(`ack ${message.properties.messageId}`);
      channel.ack(message);
    },
    nack: (message, allUpTo, requeue) => {
      settled.push(`${requeue ? 'requeue' : 'reject'} ${message.properties.messageId ?? '(no id)'}`);
      channel.nack(message, allUpTo, requeue);
    },
    consume: (q, onMessage, options) => channel.consume(q, onMessage, options),
    cancel: (tag) => channel.cancel(tag),
  },
  queue,
  { inbox, handler: book, onError: (error) => errors.push(String(error)) },
);
publish('250 EUR', 'pay-2');
publish('250 EUR', 'pay-2');
publish('5 EUR');
while (settled.length < 4) await new Promise((resolve) => setTimeout(resolve, 20));
await consumer.stop();

console.log('ledger:', ledger);
console.log('settled:', settled.sort());
console.log(
  'reported:',
  errors.map((error) => error.slice(0, 60)),
);
const deadLettered = (await admin.checkQueue(deadLetters)).messageCount;
console.log('dead-lettered:', deadLettered);
await admin.deleteQueue(queue);
await admin.deleteQueue(deadLetters);
await connection.close();
await store.close();
rmSync(dir, { recursive: true, force: true });

if (ledger.length !== 2 || deadLettered !== 1) throw new Error('expected two payments booked and one dead letter');
