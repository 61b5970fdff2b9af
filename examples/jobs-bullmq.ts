// An invoice job that BullMQ runs more than once charges the customer once. BullMQ runs a job again
// when its worker stalls (died, or blocked its event loop past the lock) and when a producer adds
// it again after it completed; the guard keys each job by queue name and job id, stores what the
// processor returned, and hands that back instead of running the processor again.
// Usage: tsx examples/jobs-bullmq.ts [redis://host:port] (default IDEM_REDIS_URL or 127.0.0.1:6379);
// the jobs and the guard's records both live in that Redis.
import { randomBytes } from 'node:crypto';
import { type Job, Queue, QueueEvents, Worker } from 'bullmq';
import { guardBullProcessor } from '../src/messaging/index.js';
import { RedisStore } from '../src/stores/redis/index.js';

const url = new URL(process.argv[2] ?? process.env.IDEM_REDIS_URL ?? 'redis://127.0.0.1:6379');
const connection = { host: url.hostname, port: Number(url.port || 6379) };
const run = randomBytes(3).toString('hex');
const store = new RedisStore({ url: url.href, prefix: `idem-example-${run}:` });

// The payment provider: every call is a charge.
const charges: string[] = [];
async function charge(orderId: string, amountCents: number): Promise<string> {
  charges.push(orderId);
  return `ch_${charges.length}_${orderId}_${amountCents}`;
}

type Invoice = { orderId: string; amountCents: number };
const processor = guardBullProcessor(
  async (job: Job<Invoice>) => ({ chargeId: await charge(job.data.orderId, job.data.amountCents) }),
  { store, retentionMs: 60_000 }, // an example's records need not outlive it; the default is 7 days
);

const queue = new Queue(`invoices-${run}`, { connection });
const events = new QueueEvents(queue.name, { connection });
const worker = new Worker(queue.name, processor, { connection });
await events.waitUntilReady();

const invoice = { orderId: 'order-1042', amountCents: 4200 };
const options = { jobId: 'invoice-order-1042', removeOnComplete: true };
const first = await (await queue.add('charge', invoice, options)).waitUntilFinished(events);
console.log('first run:      ', first);

// The producer adds the job again (its first add timed out on its side): same id, same data.
const again = await (await queue.add('charge', invoice, options)).waitUntilFinished(events);
console.log('added again:    ', again);

// BullMQ runs a stalled job again with the same job: the processor it calls is the guarded one.
const job = (await queue.add('charge', invoice, { jobId: 'invoice-order-1042' })) as Job<Invoice>;
await job.waitUntilFinished(events);
console.log('stalled re-run: ', await processor(job));

console.log(`charges made: ${charges.length}`);
await worker.close();
await events.close();
await queue.obliterate({ force: true });
await queue.close();
await store.close();
if (charges.length !== 1 || again.chargeId !== first.chargeId) process.exit(1);
