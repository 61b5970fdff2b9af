import type { ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/** A response described without any framework: adapters' test apps turn it into a real one. */
export interface NeutralResponse {
  status: number;
  headers: Record<string, string>;
  /** The whole body at once... */
  body?: string | Uint8Array;
  /** ...or a body streamed chunk by chunk. */
  stream?: AsyncIterable<string>;
}

export interface ConformanceRoute {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  op: string;
}

/**
 * The business logic behind the HTTP conformance suite, the same for every framework: each
 * route counts how often it really ran, so the suite can tell a replay from a second run.
 */
export class ConformanceApp {
  /** Every route an adapter's test app must serve, each calling `handle(op, body)`. */
  static readonly routes: readonly ConformanceRoute[] = [
    { method: 'POST', path: '/charges', op: 'charges' },
    { method: 'PUT', path: '/charges', op: 'charges' },
    { method: 'GET', path: '/charges', op: 'list' },
    { method: 'POST', path: '/other', op: 'charges' },
    { method: 'POST', path: '/flaky', op: 'flaky' },
    { method: 'POST', path: '/status', op: 'status' },
    { method: 'POST', path: '/slow', op: 'slow' },
    { method: 'POST', path: '/stream', op: 'stream' },
    { method: 'POST', path: '/big', op: 'big' },
    { method: 'POST', path: '/throw', op: 'throw' },
  ];

  /** How many times each op really ran. */
  readonly runs = new Map<string, number>();

  count(op: string): number {
    return this.runs.get(op) ?? 0;
  }

  async handle(op: string, body: unknown): Promise<NeutralResponse> {
    const n = this.count(op) + 1;
    this.runs.set(op, n);
    const input = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const json = (status: number, value: unknown, headers: Record<string, string> = {}): NeutralResponse => ({
      status,
      headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
      body: JSON.stringify(value),
    });
    switch (op) {
      case 'charges':
        return json(
          201,
          { id: `ch_${n}`, amount: input.amount ?? null },
          {
            location: `/charges/ch_${n}`,
            etag: `"v${n}"`,
            'set-cookie': `session=s${n}; HttpOnly`,
            'x-run': String(n),
          },
        );
      case 'list':
        return json(200, { charges: this.count('charges') });
      case 'flaky':
        return n === 1 ? json(500, { error: 'upstream failed' }) : json(201, { id: `fl_${n}` });
      case 'status':
        return json(Number(input.status ?? 200), { run: n });
      case 'slow':
        await sleep(Number(input.ms ?? 100));
        return json(201, { id: `sl_${n}` });
      case 'stream': {
        const chunks = Number(input.chunks ?? 5);
        const gapMs = Number(input.ms ?? 5); // between chunks, after the first
        return {
          status: 200,
          headers: { 'content-type': 'text/plain; charset=utf-8' },
          stream: (async function* () {
            for (let i = 0; i < chunks; i++) {
              await sleep(i === 0 ? 5 : gapMs);
              yield `chunk ${i} of run ${n}\n`;
            }
          })(),
        };
      }
      case 'big':
        return {
          status: 201,
          headers: { 'content-type': 'application/octet-stream' },
          // Every byte value in turn: a body that is not text, and not valid UTF-8.
          body: Uint8Array.from({ length: Number(input.size ?? 1024) }, (_, i) => (i * 7 + n) % 256),
        };
      case 'throw':
        throw new Error(`handler failed on run ${n}`);
      default:
        return json(404, { error: `no op ${op}` });
    }
  }
}

/** Writes a `NeutralResponse` on a Node response, streaming `stream` chunk by chunk. */
export async function writeNeutralResponse(res: ServerResponse, response: NeutralResponse): Promise<void> {
  res.statusCode = response.status;
  for (const [name, value] of Object.entries(response.headers)) res.setHeader(name, value);
  if (response.stream) {
    for await (const chunk of response.stream) res.write(chunk);
    res.end();
  } else {
    res.end(response.body);
  }
}
