import Fastify from 'fastify';
import mysql from 'mysql2/promise';

const pool = mysql.createPool({ uri: process.env.MYSQL_URL, connectionLimit: 10 });
const fastify = Fastify({ logger: true });

const INSERT_USER = 'INSERT INTO users (email, name) VALUES (?, ?)';
const INSERT_INVITE = 'INSERT INTO invites (code, email) VALUES (?, ?) ON DUPLICATE KEY UPDATE email = VALUES(email)';

fastify.post('/signup', async (request, reply) => {
  const { email, name } = request.body as { email: string; name: string };
  const [result] = await pool.execute(INSERT_USER, [email, name]); // expect: idem/no-blind-insert
  reply.code(201);
  return { id: (result as { insertId: number }).insertId };
});

fastify.route({
  method: 'POST',
  url: '/invites',
  schema: { body: { type: 'object', required: ['email'] } },
  handler: async (request) => {
    const { email } = request.body as { email: string };
    const code = Math.random().toString(36).slice(2);
    await pool.execute(INSERT_INVITE, [code, email]);
    return { code };
  },
});

fastify.route({
  method: 'POST',
  url: '/teams',
  handler: createTeam,
});

async function createTeam(request: { body: { name: string; ownerId: number } }) {
  const conn = await pool.getConnection();
  try {
    await conn.beginTransaction();
    const [team] = await conn.query('INSERT INTO teams (name) VALUES (?)', [request.body.name]); // expect: idem/no-blind-insert
    await conn.query('INSERT IGNORE INTO team_members (team_id, user_id) VALUES (?, ?)', [
      (team as { insertId: number }).insertId,
      request.body.ownerId,
    ]);
    await conn.commit();
    return team;
  } catch (error) {
    await conn.rollback();
    throw error;
  } finally {
    conn.release();
  }
}

fastify.get('/users/:id', async (request) => {
  const { id } = request.params as { id: string };
  const [rows] = await pool.query('SELECT id, email, name FROM users WHERE id = ?', [id]);
  return (rows as unknown[])[0] ?? null;
});

fastify.patch('/users/:id', async (request) => {
  const { id } = request.params as { id: string };
  const { name } = request.body as { name: string };
  await pool.execute('UPDATE users SET name = ? WHERE id = ?', [name, id]);
  return { ok: true };
});

fastify.post('/users/:id/logins', async (request) => {
  const { id } = request.params as { id: string };
  // A login history: one row per attempt is what the table is for.
  await pool.execute('INSERT INTO logins (user_id, at) VALUES (?, NOW())', [id]); // fp: idem/no-blind-insert (an append-only log where a retried row is harmless)
  return { ok: true };
});

await fastify.listen({ port: 3000 });
