// A Lambda handler on a DynamoDB table, invoked here as Lambda would invoke it: an invocation that
// times out mid-charge leaves a key its retry takes over at the timeout, not leaseMs (30 s) later,
// since each invocation's lease ends by its deadline (context.getRemainingTimeInMillis()); and the
// same event delivered again (an SQS redelivery) replays the stored result and charges nothing.
// Run it against dynalite or DynamoDB Local: `npx tsx examples/dynamodb-lambda.ts [endpoint]`
// (default IDEM_DYNAMODB_URL or http://127.0.0.1:4567; `npx dynalite --port 4567` starts one).
import { randomUUID } from 'node:crypto';
import { isIdempotencyError } from '../src/core/index.js';
import { makeIdempotent } from '../src/lambda/index.js';
import { DynamoDbStore } from '../src/stores/dynamodb/index.js';

const endpoint = process.argv[2] ?? process.env.IDEM_DYNAMODB_URL ?? 'http://127.0.0.1:4567';
const table = `idem_example_${randomUUID().slice(0, 8)}`;
const store = new DynamoDbStore({
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, // dynalite takes any
  table,
  createTable: true, // in production the table comes from your infrastructure code
});

interface OrderEvent {
  orderId: string;
  amountCents: number;
}

const charges: string[] = [];
let cardNetworkHangs = true;

// What you would export as the function's handler.
export const handler = makeIdempotent(
  async (event: OrderEvent, context: { awsRequestId: string }) => {
    if (cardNetworkHangs) {
      cardNetworkHangs = false;
      await new Promise(() => {}); // never answers: Lambda stops this invocation at its timeout
    }
    charges.push(event.orderId);
    return { orderId: event.orderId, chargedBy: context.awsRequestId };
  },
  { store, name: 'charge', key: (event) => event.orderId, leaseMs: 30_000 },
);

/** The parts of Lambda's context the wrapper reads, and the request id, for an invocation with `remainingMs` left. */
function invocation(remainingMs: number) {
  const deadlineMs = Date.now() + remainingMs;
  return {
    functionName: 'charge-orders',
    awsRequestId: randomUUID(),
    getRemainingTimeInMillis: () => Math.max(0, deadlineMs - Date.now()),
  };
}

// 1. The first invocation has 300 ms left and hangs: Lambda stops it at its timeout, and nothing
//    of it runs after that. Its lease ended with it, so the retry does not wait out leaseMs (30 s).
const order = { orderId: 'order-77', amountCents: 1299 };
void handler(order, invocation(300));
await new Promise((resolve) => setTimeout(resolve, 350));
const early = await handler(order, invocation(10_000)).catch((error: unknown) => error);
if (isIdempotencyError(early)) throw early;
console.log("retry just after the timeout -> ran: it took the timed-out invocation's key over");

// 2. The same event again (an SQS redelivery): the stored result, nothing charged.
const redelivered = await handler(order, invocation(10_000));
const replayed = redelivered.chargedBy === (early as typeof redelivered).chargedBy;
console.log(`redelivered event            -> ${replayed ? 'replayed the stored result' : 'ran again'}`);
console.log(`cards charged                -> ${charges.length}`);

const { DynamoDBClient, DeleteTableCommand } = await import('@aws-sdk/client-dynamodb');
const admin = new DynamoDBClient({
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'l', secretAccessKey: 'l' },
});
await admin.send(new DeleteTableCommand({ TableName: table }));
admin.destroy();
await store.close();
if (!replayed || charges.length !== 1) {
  console.error('expected one charge, replayed on redelivery');
  process.exit(1);
}
