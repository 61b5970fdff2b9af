import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Exchange, exchangeOf } from '../../check/exchange.js';
import { type ProbeOptions, type ProbeResult, type ProbeTarget, probe } from '../../check/http-probe.js';
import { type CheckRequest, probeTargetOf } from './check-request.js';
import { type CheckTarget, serveTarget } from './serve-target.js';

/**
 * What the simulated network does to one attempt:
 * - `'none'`: nothing, the request goes through;
 * - `'drop-response'`: the server acts and answers, the client sees a reset instead of the answer;
 * - `'drop-request'`: the connection drops right after the request was sent (the server may or may not act);
 * - `'timeout'`: the client gives up after `faultTimeoutMs`, whether or not the server is done;
 * - `'duplicate'`: the request is sent twice at once, with the same key.
 */
export type NetworkFault = 'none' | 'drop-response' | 'drop-request' | 'timeout' | 'duplicate';

export interface RetryingClientOptions {
  /** Seed of the jitter, so a run can be replayed. Default 1. */
  seed?: number;
  /** Retries after the first attempt. Default 3. */
  retries?: number;
  /** First retry's delay ceiling, doubled at each retry ("full jitter": a random delay from 0 to the ceiling), in ms. Default 20. */
  baseDelayMs?: number;
  /** Largest delay ceiling, in ms. Default 1000. */
  maxDelayMs?: number;
  /** Longest wait for one answer, in ms. Default 10000. */
  timeoutMs?: number;
  /** How long a `'timeout'` attempt waits before it gives up, in ms. Default 20. */
  faultTimeoutMs?: number;
}

/** One request for the client: `CheckRequest` and the key to send. */
export interface RetryingRequest extends CheckRequest {
  /** The `Idempotency-Key` of every attempt; `null` sends none. Default: a fresh UUID per `send`. */
  key?: string | null;
}

/** What the network does on this send. */
export interface NetworkPlan {
  /** The fault of each attempt in turn (`faults[0]` is the first attempt's); attempts past the list get `'none'`. */
  faults?: readonly NetworkFault[];
}

/** One attempt: its fault, the delay before it, and its request(s) (two for `'duplicate'`). */
export interface Attempt {
  /** 1 for the first attempt. */
  n: number;
  fault: NetworkFault;
  /** The jittered pause before this attempt, in ms (0 for the first). */
  delayMs: number;
  /** The status the client saw for this attempt; `null` for none (a drop or a timeout). */
  status: number | null;
  /** The request(s) sent and what came back. */
  exchanges: Exchange[];
}

/** What one `send` did. */
export interface SendReport {
  /** The key every attempt carried, or `null`. */
  key: string | null;
  attempts: Attempt[];
  /** The status of every request, in order, duplicates included; `null` for no answer. */
  statuses: (number | null)[];
  /** The last attempt's status, as the client saw it; `null` for none. */
  status: number | null;
  /** True when the client ended with a 2xx. */
  ok: boolean;
  /** True when the final answer was marked `Idempotent-Replayed: true`. */
  replayed: boolean;
  /** The final answer's body, as text (`''` for none), and parsed when it is JSON. */
  text: string;
  json: unknown;
}

/** A client that retries like a real one over a network that fails on request. */
export interface RetryingClient {
  /** The base URL requests go to (an in-process app's ephemeral port). */
  readonly url: URL;
  /** Sends `request`, retrying with jitter while there is no answer or a status worth retrying (408, 409, 425, 429, 5xx). */
  send(request: RetryingRequest, plan?: NetworkPlan): Promise<SendReport>;
  /** Stops the in-process server it started. */
  close(): Promise<void>;
}

/** Statuses a client retries with the same key. */
const RETRIED = new Set([408, 409, 425, 429, 500, 502, 503, 504]);

/**
 * A test client over `target` (an in-process app or a URL, as for `checkIdempotency`) that
 * simulates the network: each attempt may lose its response after the server acted, time out,
 * drop mid-request or be duplicated; retries wait a seeded, jittered delay.
 *
 * @example
 * ```ts
 * const client = await retryingClient(app, { seed: 7 });
 * const sent = await client.send({ method: 'POST', path: '/charges', body: { amountCents: 500 } },
 *   { faults: ['drop-response'] });
 * assert.deepEqual(sent.statuses, [null, 201]); // the retry got the first answer back
 * await client.close();
 * ```
 */
export async function retryingClient(
  target: CheckTarget,
  options: RetryingClientOptions = {},
): Promise<RetryingClient> {
  const what = 'retryingClient';
  const settings = settingsOf(options, what);
  const served = await serveTarget(target, what);
  const random = seededRandom(settings.seed);
  return {
    url: served.url,
    async send(request, plan = {}) {
      const probeTarget = probeTargetOf(served.url, served.kind !== 'url', request, what);
      const key = request.key === undefined ? randomUUID() : request.key;
      const attempts: Attempt[] = [];
      let final: ProbeResult | undefined;
      for (let n = 1; n <= settings.retries + 1; n++) {
        const delayMs = delayBefore(n, settings, random);
        if (delayMs > 0) await sleep(delayMs);
        const fault = plan.faults?.[n - 1] ?? 'none';
        const { answer, exchanges } = await attempt(probeTarget, key, fault, settings);
        attempts.push({ n, fault, delayMs, status: seenStatus(answer), exchanges });
        final = answer;
        if (answer.ok && !RETRIED.has(answer.status)) break;
      }
      return report(key, attempts, final as ProbeResult);
    },
    close: () => served.close(),
  };
}

type Settings = Required<RetryingClientOptions>;

/** "Full jitter": a random delay from 0 to a ceiling that doubles at each retry; none before the first attempt. */
function delayBefore(n: number, settings: Settings, random: () => number): number {
  if (n === 1) return 0;
  const ceilingMs = Math.min(settings.maxDelayMs, settings.baseDelayMs * 2 ** (n - 2));
  return Math.round(random() * ceilingMs);
}

async function attempt(
  target: ProbeTarget,
  key: string | null,
  fault: NetworkFault,
  settings: Settings,
): Promise<{ answer: ProbeResult; exchanges: Exchange[] }> {
  const options: Omit<ProbeOptions, 'timeoutMs'> = {
    ...(key === null ? {} : { key }),
    ...(fault === 'drop-response' ? { dropOnResponse: true } : {}),
    ...(fault === 'drop-request' ? { dropAfterMs: 0 } : {}),
  };
  const timeoutMs = fault === 'timeout' ? settings.faultTimeoutMs : settings.timeoutMs;
  const copies = fault === 'duplicate' ? 2 : 1;
  const answers = await Promise.all(Array.from({ length: copies }, () => probe(target, { ...options, timeoutMs })));
  const answer = answers.find((one) => one.ok && one.status < 300) ?? (answers[0] as ProbeResult);
  return { answer, exchanges: answers.map((one) => exchangeOf(options, one)) };
}

function seenStatus(answer: ProbeResult): number | null {
  return answer.ok ? answer.status : null;
}

function report(key: string | null, attempts: Attempt[], final: ProbeResult): SendReport {
  const text = final.ok ? final.body.toString('utf8') : '';
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return {
    key,
    attempts,
    statuses: attempts.flatMap((one) => one.exchanges.map((exchange) => (exchange.dropped ? null : exchange.status))),
    status: seenStatus(final),
    ok: final.ok && final.status >= 200 && final.status < 300,
    replayed: final.ok && String(final.headers['idempotent-replayed']).toLowerCase() === 'true',
    text,
    json,
  };
}

function settingsOf(options: RetryingClientOptions, what: string): Settings {
  const whole = (value: number | undefined, fallback: number, name: string) => {
    if (value === undefined) return fallback;
    if (!Number.isInteger(value) || value < 0 || value > 600_000) {
      throw new TypeError(`[idem] ${what}: ${name} ${value} must be a whole number from 0 to 600000.`);
    }
    return value;
  };
  return {
    seed: whole(options.seed, 1, 'seed'),
    retries: whole(options.retries, 3, 'retries'),
    baseDelayMs: whole(options.baseDelayMs, 20, 'baseDelayMs'),
    maxDelayMs: whole(options.maxDelayMs, 1000, 'maxDelayMs'),
    timeoutMs: Math.max(1, whole(options.timeoutMs, 10_000, 'timeoutMs')),
    faultTimeoutMs: Math.max(1, whole(options.faultTimeoutMs, 20, 'faultTimeoutMs')),
  };
}

/** Mulberry32: a small seeded generator of numbers in [0, 1), enough for jitter. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
