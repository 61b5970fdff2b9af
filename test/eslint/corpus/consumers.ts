import amqp from 'amqplib';
import { Worker } from 'bullmq';
import { Kafka } from 'kafkajs';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { consumeAmqp, guardBullProcessor, SqlInbox } from 'idem/messaging';
import { RedisStore } from 'idem/redis';
import { postgresSteps } from 'idem/workflow';

const pool = new pg.Pool();
const connection = await amqp.connect('amqp://localhost');
const channel = await connection.createChannel();
const store = new RedisStore({ url: 'redis://localhost:6379' });

await channel.consume('order.created', async (message) => {
  if (message === null) return;
  const order = JSON.parse(message.content.toString()) as { id: string; email: string };
  await pool.query('INSERT INTO welcome_emails (order_id, email) VALUES ($1, $2)', [order.id, order.email]); // expect: idem/no-blind-insert
  channel.ack(message);
});

await consumeAmqp(channel, 'invoices', {
  store,
  consumer: 'invoices',
  handler: async (payload: { invoiceId: string }) => {
    await pool.query('INSERT INTO invoice_jobs (invoice_id) VALUES ($1) ON CONFLICT (invoice_id) DO NOTHING', [
      payload.invoiceId,
    ]);
  },
});

const inbox = new SqlInbox({ database: postgresSteps(pool, { table: 'idem_inbox' }), consumer: 'ledger' });
await channel.consume('ledger', async (message) => {
  if (message === null) return;
  await inbox.consume({ id: message.properties.messageId }, async (tx) => {
    await tx.query('INSERT INTO ledger (entry_id, cents) VALUES ($1, $2)', [message.properties.messageId, 100]);
  });
  channel.ack(message);
});

new Worker(
  'thumbnails',
  guardBullProcessor(
    async (job) => {
      await pool.query('INSERT INTO thumbnails (image_id, size) VALUES ($1, $2)', [job.data.imageId, 256]); // expect: idem/no-blind-insert
    },
    { store, consumer: 'thumbnails' },
  ),
  { connection: { host: 'localhost' } },
);

new Worker('exports', async (job) => {
  await pool.query(
    'INSERT INTO exports (job_id, status) VALUES ($1, $2) ON CONFLICT (job_id) DO UPDATE SET status = $2',
    [job.id, 'done'],
  );
});

const boss = new PgBoss(process.env.DATABASE_URL ?? '');
await boss.start();
await boss.work('send-sms', async ([job]) => {
  await recordSms(job.data.to, job.data.body);
});

async function recordSms(to: string, body: string) {
  await pool.query('INSERT INTO sms_log (recipient, body) VALUES ($1, $2)', [to, body]); // expect: idem/no-blind-insert
}

const kafka = new Kafka({ clientId: 'billing', brokers: ['localhost:9092'] });
const consumer = kafka.consumer({ groupId: 'billing' });
await consumer.run({
  eachMessage: async ({ message }) => {
    const usage = JSON.parse(message.value?.toString() ?? '{}') as { account: string; units: number };
    await pool.query('INSERT INTO usage (account, units) VALUES ($1, $2)', [usage.account, usage.units]); // expect: idem/no-blind-insert
  },
});
