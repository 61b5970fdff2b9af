import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/** What a client did to one payment: when it sent, and how long it waited for the answer. */
interface Attempt {
  /** Start, in ms after the payment's first click. */
  atMs: number;
  /** Gives up (drops the connection) after this long, in ms. */
  timeoutMs: number;
  pattern: Pattern;
}

/** The ways real clients repeat a request. */
export const PATTERNS = {
  doubleClick: 'double-clicks',
  timeout: 'client timeouts',
  retry: 'jittered retries',
  resend: 're-sends after success',
  redelivery: 'queue redeliveries',
} as const;
type Pattern = keyof typeof PATTERNS;

/** 20 attempts per payment: 4 of each pattern. */
function attempts(): Attempt[] {
  const list: Attempt[] = [];
  for (let i = 0; i < 4; i++) {
    list.push({ atMs: i * 2, timeoutMs: 5000, pattern: 'doubleClick' });
    list.push({ atMs: 10 + i * 3, timeoutMs: 15, pattern: 'timeout' });
    list.push({ atMs: 40 + Math.floor(Math.random() * 120), timeoutMs: 5000, pattern: 'retry' });
    list.push({ atMs: 250 + i * 10, timeoutMs: 5000, pattern: 'resend' });
    list.push({ atMs: 320, timeoutMs: 5000, pattern: 'redelivery' });
  }
  return list;
}

/** One logical payment: what the customer meant to pay, once. */
export interface LogicalPayment {
  key: string;
  amount: number;
  /**
   * The client's credential, sent as `Authorization: Bearer <client>`: the gateway scopes keys by
   * the caller, and refuses keyed requests from callers it cannot tell apart.
   */
  client: string;
}

export interface StormResult {
  /** Attempts made (not counting re-sends after a 409). */
  attempts: number;
  /** Answers that were a fresh 2xx. */
  ran: number;
  /** Answers replayed by Idem (Idempotent-Replayed: true). */
  replayed: number;
  /** 409 answers, each followed by a re-send 50 ms later. */
  inProgress: number;
  /** Attempts the client gave up on before the answer came. */
  timedOut: number;
  /** Payment ids the clients were told about. */
  ids: Set<string>;
  ms: number;
}

export function logicalPayments(count: number): LogicalPayment[] {
  const amounts = [1999, 4500, 1250, 800, 12000, 2599, 350, 7000];
  return Array.from({ length: count }, (_, i) => ({
    key: `order-${1001 + i}-${randomUUID().slice(0, 8)}`,
    amount: amounts[i % amounts.length] as number,
    client: `demo-client-${i + 1}`,
  }));
}

/**
 * Sends every payment the way clients in the wild do: double-clicks, client timeouts, retries
 * with jitter, re-sends after success and queue redeliveries, all with the payment's one
 * Idempotency-Key. A 409 (in progress) is re-sent after 50 ms, as a well-behaved client would.
 */
export async function retryStorm(baseUrl: string, payments: LogicalPayment[]): Promise<StormResult> {
  const agent = new Agent({ keepAlive: true });
  const result: StormResult = { attempts: 0, ran: 0, replayed: 0, inProgress: 0, timedOut: 0, ids: new Set(), ms: 0 };
  const started = performance.now();
  try {
    await Promise.all(
      payments.flatMap((payment) =>
        attempts().map((attempt) => makeAttempt(agent, `${baseUrl}/payments`, payment, attempt, result)),
      ),
    );
  } finally {
    agent.destroy();
  }
  result.ms = performance.now() - started;
  return result;
}

/** One attempt at its time: sent, re-sent 50 ms after each 409, and its answer counted in `result`. */
async function makeAttempt(
  agent: Agent,
  url: string,
  payment: LogicalPayment,
  attempt: Attempt,
  result: StormResult,
): Promise<void> {
  await sleep(attempt.atMs);
  result.attempts += 1;
  for (let resend = 0; resend < 100; resend++) {
    const answer = await post(agent, url, payment, attempt.timeoutMs);
    if (answer?.status === 409) {
      result.inProgress += 1;
      await sleep(50);
      continue;
    }
    count(result, answer);
    return;
  }
}

/** Counts a final answer: timed out (`undefined`), replayed or ran, and the payment id it told. */
function count(result: StormResult, answer: Answer | undefined): void {
  if (answer === undefined) {
    result.timedOut += 1;
    return;
  }
  if (answer.replayed) result.replayed += 1;
  else result.ran += 1;
  if (typeof answer.id === 'string') result.ids.add(answer.id);
}

interface Answer {
  status: number;
  replayed: boolean;
  id: unknown;
}

/** How long a client waits to get its request out at all. */
const CONNECT_TIMEOUT_MS = 5000;

function post(agent: Agent, url: string, payment: LogicalPayment, timeoutMs: number): Promise<Answer | undefined> {
  const body = JSON.stringify({ amount: payment.amount, currency: 'usd' });
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'idempotency-key': `"${payment.key}"`,
          authorization: `Bearer ${payment.client}`,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', () => resolve(undefined));
        res.on('end', () => {
          clearTimeout(timer);
          let id: unknown;
          try {
            id = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: unknown }).id;
          } catch {
            id = undefined;
          }
          resolve({ status: res.statusCode ?? 0, replayed: res.headers['idempotent-replayed'] === 'true', id });
        });
      },
    );
    // The client's clock starts once the whole request is on the wire, so a timeout always
    // leaves the API with a request it goes on to charge, however slow the machine is.
    const giveUp = () => req.destroy(new Error('client timeout'));
    let timer = setTimeout(giveUp, CONNECT_TIMEOUT_MS);
    req.on('finish', () => {
      clearTimeout(timer);
      timer = setTimeout(giveUp, timeoutMs);
    });
    req.on('error', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    req.end(body);
  });
}
