import { rules } from '../../src/eslint/index.js';
import { ruleTester } from './rule-tester.js';

/** `code` with ` ON CONFLICT DO NOTHING` after its `n`th `VALUES (...)` (from 0): the suggestion's output. */
function suggested(code: string, n = 0) {
  let seen = -1;
  const output = code.replace(/VALUES \([^)]*\)/g, (values) =>
    ++seen === n ? `${values} ON CONFLICT DO NOTHING` : values,
  );
  return [{ messageId: 'appendOnConflict', output }];
}

const RECORD_EVENT = `const INSERT_EVENT = 'INSERT INTO events (type) VALUES ($1)';
async function record(type) { await pool.query(INSERT_EVENT, [type]); }
app.post('/events', async (req, res) => { await record(req.body.type); res.sendStatus(201); });`;
const STEP_AND_CONSUMER = `workflows.define('signup', async (ctx, input) => {
  await ctx.step('welcome', () => pool.query('INSERT INTO emails (user_id) VALUES ($1)', [input.id]));
});
channel.consume('q', async (msg) => {
  await consumeOnce({ store, consumer: 'c', id: msg.id, handler: () => pool.query({ text: 'INSERT INTO audit (id) VALUES ($1)', values: [msg.id] }) });
});`;
const ENTRY_KINDS = `async function createOrder(req, res) { await pool.query('INSERT INTO orders (id) VALUES ($1)', [req.body.id]); }
app.post('/orders', createOrder);
class OrdersController {
  @Post()
  async create(body) { await this.pool.query('INSERT INTO orders (id) VALUES ($1)', [body.id]); }
}
export const handler = async (event) => { await pool.query('INSERT INTO hits (id) VALUES ($1)', [event.id]); };`;
const BESIDE_TRANSACTION = `workflows.define('w', async (ctx) => {
  await ctx.transaction('t', db, async (tx) => { await pool.query('INSERT INTO log (a) VALUES ($1)', [1]); });
});`;

ruleTester.run('no-blind-insert', rules['no-blind-insert'], {
  valid: [
    // Not reachable from a handler, a consumer or a step: a migration, a seed script.
    `await pool.query('INSERT INTO users (email) VALUES ($1)', ['a@b.c']);`,
    `export async function seed(db) { await db.query("INSERT INTO plans (id) VALUES ('free')"); }`,
    // Conflict-safe inserts.
    `app.post('/orders', async (req, res) => { await pool.query('INSERT INTO orders (id) VALUES ($1) ON CONFLICT (id) DO NOTHING', [req.body.id]); });`,
    `app.post('/orders', async (req, res) => { await conn.execute('INSERT INTO orders (id) VALUES (?) ON DUPLICATE KEY UPDATE id = id', [1]); });`,
    `app.post('/orders', (req, res) => { db.prepare('INSERT OR IGNORE INTO orders (id) VALUES (?)').run(1); });`,
    `app.post('/orders', async (req, res) => { await conn.query('INSERT IGNORE INTO orders (id) VALUES (?)', [1]); });`,
    `app.post('/x', async (req) => { await pool.query(\`INSERT INTO seen (id) SELECT $1 WHERE NOT EXISTS (SELECT 1 FROM seen WHERE id = $1)\`, [1]); });`,
    // Not an INSERT.
    `app.post('/orders', async (req, res) => { await pool.query('UPDATE orders SET paid = true WHERE id = $1', [1]); });`,
    // A Map's get with a function argument is not a route.
    `cache.get(key, () => pool.query('INSERT INTO t (a) VALUES (1)'));`,
    // Writes through the transaction of ctx.transaction commit with the step's record.
    `workflows.define('order', async (ctx) => {
       await ctx.transaction('reserve', db, async (tx) => { await tx.query('INSERT INTO reservations (sku) VALUES ($1)', ['a']); });
     });`,
    // The SQL inbox hands its handler the transaction its record commits in.
    `channel.consume('orders', (message) => inbox.consume({ id: message.id }, async (tx) => {
       await tx.query('INSERT INTO shipments (order_id) VALUES ($1)', [message.id]);
     }));`,
    // SQL built at run time is not read.
    `app.post('/x', async (req) => { await pool.query(buildInsert(req.body)); });`,
  ],
  invalid: [
    {
      code: `app.post('/orders', async (req, res) => {
  await pool.query('INSERT INTO orders (id, total) VALUES ($1, $2)', [req.body.id, req.body.total]);
});`,
      errors: [
        {
          messageId: 'blindInsert',
          data: { kind: 'request handler', line: '1' },
          suggestions: [
            {
              messageId: 'appendOnConflict',
              output: `app.post('/orders', async (req, res) => {
  await pool.query('INSERT INTO orders (id, total) VALUES ($1, $2) ON CONFLICT DO NOTHING', [req.body.id, req.body.total]);
});`,
            },
          ],
        },
      ],
    },
    {
      // A template literal with RETURNING: the clause goes before it.
      code: `router.put('/orders/:id', async (ctx) => {
  const { rows } = await client.query(\`INSERT INTO orders (id) VALUES ($1) RETURNING id\`, [ctx.params.id]);
});`,
      errors: [
        {
          messageId: 'blindInsert',
          suggestions: [
            {
              messageId: 'appendOnConflict',
              output: `router.put('/orders/:id', async (ctx) => {
  const { rows } = await client.query(\`INSERT INTO orders (id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id\`, [ctx.params.id]);
});`,
            },
          ],
        },
      ],
    },
    {
      // mysql2: no suggestion (ON DUPLICATE KEY UPDATE needs the columns).
      code: `fastify.post('/signup', async (request) => { await conn.execute('INSERT INTO users (email) VALUES (?)', [request.body.email]); });`,
      errors: [{ messageId: 'blindInsert', suggestions: [] }],
    },
    {
      // Reachable through a function of the same file; the SQL is a const.
      code: RECORD_EVENT,
      errors: [
        {
          messageId: 'blindInsert',
          data: { kind: 'request handler', line: '3' },
          suggestions: suggested(RECORD_EVENT),
        },
      ],
    },
    {
      // better-sqlite3: prepared once at the top, run in a consumer.
      code: `const insertJob = db.prepare('INSERT INTO jobs (id, payload) VALUES (?, ?)');
new Worker('emails', async (job) => { insertJob.run(job.id, JSON.stringify(job.data)); });`,
      errors: [
        {
          messageId: 'blindInsert',
          data: { kind: 'message consumer', line: '2' },
          suggestions: [
            {
              messageId: 'appendOnConflict',
              output: `const insertJob = db.prepare('INSERT INTO jobs (id, payload) VALUES (?, ?) ON CONFLICT DO NOTHING');
new Worker('emails', async (job) => { insertJob.run(job.id, JSON.stringify(job.data)); });`,
            },
          ],
        },
      ],
    },
    {
      // A workflow step, and an amqplib consumer; Idem's inbox does not make the INSERT safe on a crash.
      code: STEP_AND_CONSUMER,
      errors: [
        {
          messageId: 'blindInsert',
          data: { kind: 'workflow step', line: '2' },
          suggestions: suggested(STEP_AND_CONSUMER),
        },
        {
          messageId: 'blindInsert',
          data: { kind: 'message consumer', line: '5' },
          suggestions: suggested(STEP_AND_CONSUMER, 1),
        },
      ],
    },
    {
      // A route handler named elsewhere, a NestJS controller method, a Lambda handler.
      code: ENTRY_KINDS,
      errors: [
        { messageId: 'blindInsert', data: { kind: 'request handler', line: '2' }, suggestions: suggested(ENTRY_KINDS) },
        {
          messageId: 'blindInsert',
          data: { kind: 'request handler', line: '5' },
          suggestions: suggested(ENTRY_KINDS, 1),
        },
        {
          messageId: 'blindInsert',
          data: { kind: 'Lambda handler', line: '7' },
          suggestions: suggested(ENTRY_KINDS, 2),
        },
      ],
    },
    {
      // Writes beside the transaction (not through it) are not covered by it.
      code: BESIDE_TRANSACTION,
      errors: [
        {
          messageId: 'blindInsert',
          data: { kind: 'workflow step', line: '2' },
          suggestions: suggested(BESIDE_TRANSACTION),
        },
      ],
    },
  ],
});
