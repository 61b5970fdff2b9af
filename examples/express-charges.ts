// An Express API whose POST /charges is protected by idem/express: the first request charges,
// a retry with the same key gets the same 201 back, a duplicate sent while the first still runs
// gets 409, and the same key with another amount gets 422. Memory store; no server needed.
// Run it with `npx tsx examples/express-charges.ts`.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { idempotency } from '../src/adapters/express/index.js';
import { MemoryStore } from '../src/stores/memory/index.js';

const store = new MemoryStore();
const charges: { id: string; amountCents: number }[] = [];
const app = express();
app.use(express.json()); // mount Idem after the body parser: it fingerprints the parsed body

app.post('/charges', idempotency({ store, required: true }), async (req, res) => {
  await sleep(100); // the card network is slow
  const charge = { id: `ch_${charges.length + 1}`, amountCents: Number(req.body.amountCents) };
  charges.push(charge);
  res.status(201).location(`/charges/${charge.id}`).json(charge);
});

const server = app.listen(0, '127.0.0.1');
await once(server, 'listening');
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/charges`;

async function post(key: string, amountCents: number): Promise<string> {
  const response = await fetch(url, {
    method: 'POST',
    // The key is scoped by the caller: here its Authorization header.
    headers: { 'idempotency-key': key, authorization: 'Bearer shop-1', 'content-type': 'application/json' },
    body: JSON.stringify({ amountCents }),
  });
  const replayed = response.headers.get('idempotent-replayed') === 'true' ? ', replayed' : '';
  const body = (await response.json()) as { id?: string; type?: string };
  return `${response.status} ${body.id ?? body.type}${replayed}`;
}

const answers = {
  first: await post('order-42', 1999),
  retry: await post('order-42', 1999),
  otherAmount: await post('order-42', 5),
  twoAtOnce: (await Promise.all([post('order-43', 500), post('order-43', 500)])).sort().join(' | '),
};
console.log(`first request            -> ${answers.first}`);
console.log(`retry, same key and body -> ${answers.retry}`);
console.log(`same key, other amount   -> ${answers.otherAmount}`);
console.log(`two at once, one key     -> ${answers.twoAtOnce}`);
console.log(`cards charged            -> ${charges.length}`);

server.close();
await store.close();
// Two at once: the second normally arrives while the first still runs (409); on a busy machine
// it may arrive after, and then gets the replay. Either way the card is charged once.
const twoAtOnce = ['201 ch_2 | 409 urn:idem:problem:in-progress', '201 ch_2 | 201 ch_2, replayed'];
const ok =
  answers.first === '201 ch_1' &&
  answers.retry === '201 ch_1, replayed' &&
  answers.otherAmount === '422 urn:idem:problem:key-reused' &&
  twoAtOnce.includes(answers.twoAtOnce) &&
  charges.length === 2;
if (!ok) {
  console.error('expected one charge per key, a replay for the retry and 422 for the other amount');
  process.exit(1);
}
