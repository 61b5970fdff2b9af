import express from 'express';
import { Pool } from 'pg';

const pool = new Pool({ connectionString: process.env.DATABASE_URL });
const app = express();
app.use(express.json());

// Run once at start-up: not reachable from a handler.
async function migrate() {
  await pool.query(`CREATE TABLE IF NOT EXISTS orders (id text PRIMARY KEY, customer_id text, total_cents int)`);
  await pool.query(`INSERT INTO settings (name, value) VALUES ('currency', 'usd')`);
}

async function audit(action: string, subject: string) {
  await pool.query('INSERT INTO audit_log (action, subject, at) VALUES ($1, $2, now())', [action, subject]); // expect: idem/no-blind-insert
}

app.post('/orders', async (req, res) => {
  const { customerId, totalCents } = req.body;
  const { rows } = await pool.query( // expect: idem/no-blind-insert
    'INSERT INTO orders (id, customer_id, total_cents) VALUES (gen_random_uuid(), $1, $2) RETURNING id',
    [customerId, totalCents],
  );
  await audit('order.created', rows[0].id);
  res.status(201).json(rows[0]);
});

app.put('/orders/:id', async (req, res) => {
  await pool.query(
    `INSERT INTO orders (id, customer_id, total_cents) VALUES ($1, $2, $3)
     ON CONFLICT (id) DO UPDATE SET total_cents = EXCLUDED.total_cents`,
    [req.params.id, req.body.customerId, req.body.totalCents],
  );
  res.sendStatus(204);
});

app.post('/orders/:id/lines', async (req, res) => {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    for (const line of req.body.lines) {
      await client.query(`INSERT INTO order_lines (order_id, sku, qty) VALUES ($1, $2, $3)`, [ // expect: idem/no-blind-insert
        req.params.id,
        line.sku,
        line.qty,
      ]);
    }
    await client.query('UPDATE orders SET updated_at = now() WHERE id = $1', [req.params.id]);
    await client.query('COMMIT');
    res.sendStatus(201);
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
});

app.post('/orders/:id/tags', async (req, res) => {
  await pool.query('INSERT INTO order_tags (order_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING', [
    req.params.id,
    req.body.tag,
  ]);
  res.sendStatus(204);
});

app.get('/orders', async (_req, res) => {
  const { rows } = await pool.query('SELECT id, total_cents FROM orders ORDER BY created_at DESC LIMIT 50');
  res.json(rows);
});

app.get('/orders/:id', async (req, res) => {
  const { rows } = await pool.query('SELECT * FROM orders WHERE id = $1', [req.params.id]);
  if (rows.length === 0) return res.sendStatus(404);
  res.json(rows[0]);
});

app.delete('/orders/:id', async (req, res) => {
  await pool.query('DELETE FROM orders WHERE id = $1', [req.params.id]);
  await audit('order.deleted', req.params.id);
  res.sendStatus(204);
});

app.use(async (req, _res, next) => {
  await pool.query('INSERT INTO request_log (path, at) VALUES ($1, now())', [req.path]);
  next();
});

await migrate();
app.listen(3000);
