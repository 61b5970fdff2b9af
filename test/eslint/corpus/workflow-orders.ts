import axios from 'axios';
import pg from 'pg';
import Stripe from 'stripe';
import { PostgresStore } from 'idem/postgres';
import { postgresSteps, Workflows } from 'idem/workflow';

const pool = new pg.Pool();
const stripe = new Stripe(process.env.STRIPE_SECRET_KEY ?? '');
const workflows = new Workflows({ store: new PostgresStore({ pool }) });
const stepsDb = postgresSteps(pool);
const shipping = axios.create({ baseURL: 'https://shipping.example' });

export const fulfil = workflows.define('fulfil', async (ctx, input: { orderId: string; cents: number }) => {
  const startedAt = Date.now(); // expect: idem/workflow-determinism
  const { rows } = await pool.query('SELECT * FROM orders WHERE id = $1', [input.orderId]); // expect: idem/workflow-determinism

  const charge = await ctx.step('charge', (step) =>
    stripe.paymentIntents.create({ amount: input.cents, currency: 'usd', confirm: true }, { idempotencyKey: step.key }),
  );

  await ctx.transaction('reserve stock', stepsDb, async (tx) => {
    await tx.query('UPDATE stock SET reserved = reserved + 1 WHERE sku = $1', [rows[0].sku]);
    await tx.query('INSERT INTO reservations (order_id, sku) VALUES ($1, $2)', [input.orderId, rows[0].sku]);
  });

  const label = await ctx.step('label', async (step) => {
    const response = await fetch('https://labels.example/v1/labels', { // expect: idem/step-fetch-requires-key
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ orderId: input.orderId }),
    });
    return (await response.json()) as { id: string; attempt: number; key: string };
  });

  await ctx.step('ship', async (step) => {
    await shipping.post('/shipments', { label: label.id }, { headers: { 'Idempotency-Key': step.key } });
  });

  await ctx.step('notify warehouse', () => shipping.post('/notifications', { orderId: input.orderId })); // expect: idem/step-fetch-requires-key

  await ctx.step('record', () =>
    pool.query('INSERT INTO shipments (order_id, label_id) VALUES ($1, $2)', [input.orderId, label.id]), // expect: idem/no-blind-insert
  );

  await ctx.step('history', () =>
    pool.query('INSERT INTO order_history (order_id, event) VALUES ($1, $2) ON CONFLICT DO NOTHING', [input.orderId, 'shipped']),
  );

  const now = await ctx.step('now', () => Date.now());
  await ctx.sleepUntil(now + 3 * 24 * 3600_000);
  console.log('fulfilled in', Date.now() - startedAt, 'ms'); // fp: idem/workflow-determinism (a log line only)
  return { chargeId: charge.id, label: label.id };
});

export const cleanup = workflows.define('cleanup', async (ctx, input: { before: number }) => {
  const batch = await ctx.step('pick', () => pool.query('SELECT id FROM carts WHERE updated_at < $1 LIMIT 100', [input.before]));
  for (const row of batch.rows) {
    await ctx.step(`delete ${row.id}`, async (step) => {
      await fetch(`https://carts.example/carts/${row.id}`, { method: 'DELETE', headers: { 'Idempotency-Key': step.key } });
    });
  }
  const token = Math.random().toString(36); // expect: idem/workflow-determinism
  return { deleted: batch.rows.length, token };
});
