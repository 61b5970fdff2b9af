import { Hono } from 'hono';
import Koa from 'koa';
import Router from '@koa/router';
import pg from 'pg';
import postgres from 'postgres';

const pool = new pg.Pool();
const sql = postgres(process.env.DATABASE_URL ?? '');

// Hono: a webhook receiver that records each event id once.
const app = new Hono();
app.post('/webhooks/payments', async (c) => {
  const event = await c.req.json<{ id: string; type: string }>();
  const { rowCount } = await pool.query(
    'INSERT INTO processed_events (event_id, type) VALUES ($1, $2) ON CONFLICT (event_id) DO NOTHING',
    [event.id, event.type],
  );
  if (rowCount === 0) return c.json({ duplicate: true });
  await pool.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [event.id]);
  return c.json({ ok: true });
});

app.post('/bookmarks', async (c) => {
  const { url, userId } = await c.req.json<{ url: string; userId: string }>();
  await pool.query('insert into bookmarks (user_id, url) values ($1, $2)', [userId, url]); // expect: idem/no-blind-insert
  return c.body(null, 201);
});

app.get('/bookmarks/:userId', async (c) => {
  const { rows } = await pool.query('SELECT url FROM bookmarks WHERE user_id = $1', [c.req.param('userId')]);
  return c.json(rows);
});

// postgres.js tagged templates are not read by the rule.
app.post('/likes', async (c) => {
  const { postId, userId } = await c.req.json<{ postId: string; userId: string }>();
  await sql`INSERT INTO likes (post_id, user_id) VALUES (${postId}, ${userId})`; // missed: idem/no-blind-insert (postgres.js tagged template)
  return c.body(null, 201);
});

// Koa with @koa/router.
const koa = new Koa();
const router = new Router();

router.post('/comments', async (ctx) => {
  const { postId, body } = ctx.request.body as { postId: string; body: string };
  const result = await pool.query(`INSERT INTO comments (post_id, body) VALUES ($1, $2) RETURNING id`, [postId, body]); // expect: idem/no-blind-insert
  ctx.status = 201;
  ctx.body = result.rows[0];
});

router.post('/comments/:id/reactions', async (ctx) => {
  await pool.query(
    'INSERT INTO reactions (comment_id, user_id, kind) VALUES ($1, $2, $3) ON CONFLICT (comment_id, user_id) DO UPDATE SET kind = $3',
    [ctx.params.id, ctx.state.user.id, ctx.request.body.kind],
  );
  ctx.status = 204;
});

router.get('/comments', async (ctx) => {
  ctx.body = (await pool.query('SELECT * FROM comments LIMIT 20')).rows;
});

koa.use(router.routes()).use(router.allowedMethods());
export default app;
