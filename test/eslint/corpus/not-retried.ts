// Code that runs once, by hand or at start-up: seeds, migrations, test fixtures, CLIs, and
// clients calling out. Nothing here is reachable from a handler, a consumer or a step.
import Database from 'better-sqlite3';
import pg from 'pg';
import mysql from 'mysql2/promise';
import Stripe from 'stripe';

const pool = new pg.Pool();
const db = new Database(':memory:');

export async function seed() {
  await pool.query("INSERT INTO plans (id, cents) VALUES ('free', 0), ('pro', 1900)");
  db.prepare('INSERT INTO users (email) VALUES (?)').run('admin@example.com');
  const conn = await mysql.createConnection({ uri: 'mysql://root@localhost/test' });
  await conn.execute('INSERT INTO countries (code) VALUES (?)', ['FR']);
}

export async function migrate() {
  await pool.query(`
    CREATE TABLE IF NOT EXISTS events (id bigserial PRIMARY KEY, type text NOT NULL);
    INSERT INTO schema_version (version) VALUES (12);
  `);
}

export async function backfillTotals() {
  const { rows } = await pool.query('SELECT id FROM orders WHERE total IS NULL');
  for (const row of rows) await pool.query('UPDATE orders SET total = 0 WHERE id = $1', [row.id]);
}

// A test helper.
export function givenUser(email: string) {
  return db.prepare('INSERT INTO users (email) VALUES (?) RETURNING id').get(email);
}

// A client making calls: not a step, so step-fetch-requires-key does not apply.
export async function createRemoteOrder(body: unknown) {
  const response = await fetch('https://api.example/orders', { method: 'POST', body: JSON.stringify(body) });
  return response.json();
}

export function timestamp() {
  return { at: Date.now(), nonce: Math.random() };
}

const cache = new Map<string, () => Promise<unknown>>();
cache.set('/stats', () => pool.query('INSERT INTO stats_hits (at) VALUES (now())'));

// Reads and non-money Stripe calls.
const stripe = new Stripe('sk_test');
export async function report() {
  const balance = await stripe.balance.retrieve();
  const customers = await stripe.customers.list({ limit: 10 });
  const product = await stripe.products.create({ name: 'T-shirt' });
  return { balance, customers, product };
}

// A CLI.
if (process.argv[2] === 'seed') await seed();
