import { setTimeout as sleep } from 'node:timers/promises';
import express, { type Express } from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import { idempotency as expressIdempotency } from '../../src/adapters/express/index.js';
import { idempotency as fastifyIdempotency } from '../../src/adapters/fastify/index.js';
import { idempotency as honoIdempotency } from '../../src/adapters/hono/index.js';
import { idempotency as koaIdempotency } from '../../src/adapters/koa/index.js';
import type { Store as IdempotencyStore } from '../../src/core/store.js';

/** A charge the apps create; `charges` is what `verify` reads back. */
export interface Charge {
  id: string;
  amountCents: number;
}

/** Creates a charge after a short wait (the card network), so duplicates overlap. */
async function charge(charges: Charge[], body: unknown): Promise<Charge> {
  await sleep(20);
  const created = {
    id: `ch_${charges.length + 1}`,
    amountCents: Number((body as { amountCents?: number })?.amountCents),
  };
  charges.push(created);
  return created;
}

/** An Express app whose POST /charges goes through Idem on `store` (or none: the naive app). */
export function expressApp(store: IdempotencyStore | undefined, charges: Charge[]): Express {
  const app = express();
  app.use(express.json());
  const protect = store === undefined ? [] : [expressIdempotency({ store })];
  app.post('/charges', ...protect, async (req, res) => {
    res.status(201).json(await charge(charges, req.body));
  });
  app.get('/charges', (_req, res) => {
    res.json(charges);
  });
  return app;
}

/** The same with Fastify. */
export async function fastifyApp(store: IdempotencyStore, charges: Charge[]): Promise<FastifyInstance> {
  const app = Fastify();
  await app.register(fastifyIdempotency, { store });
  app.post('/charges', async (request, reply) => reply.code(201).send(await charge(charges, request.body)));
  return app;
}

/** The same with Koa (the JSON body is parsed by hand: no body parser dependency). */
export function koaApp(store: IdempotencyStore, charges: Charge[]): Koa {
  const app = new Koa();
  app.use(async (ctx, next) => {
    const chunks: Buffer[] = [];
    for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    (ctx.request as unknown as { body: unknown }).body = text === '' ? undefined : JSON.parse(text);
    await next();
  });
  const protect = koaIdempotency({ store });
  app.use(async (ctx, next) => {
    if (ctx.method === 'POST' && ctx.path === '/charges') {
      await protect(ctx, async () => {
        ctx.status = 201;
        ctx.body = await charge(charges, (ctx.request as unknown as { body: unknown }).body);
      });
    } else await next();
  });
  return app;
}

/** The same with Hono. */
export function honoApp(store: IdempotencyStore, charges: Charge[]): Hono {
  const app = new Hono();
  app.post('/charges', honoIdempotency({ store }), async (c) => c.json(await charge(charges, await c.req.json()), 201));
  return app;
}
