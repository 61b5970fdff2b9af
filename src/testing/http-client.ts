import assert from 'node:assert/strict';
import { request } from 'node:http';

export interface SendOptions {
  method?: string;
  /** Header values; an array sends the header once per value. */
  headers?: Record<string, string | string[]>;
  /** A JSON value (sent as application/json unless a content-type is given), a string or bytes. */
  body?: unknown;
  /** Abort the request after this many ms, as a client that gives up would. */
  abortAfterMs?: number;
  /** Abort the request as soon as the first chunk of the response body arrives (rejects then). */
  abortAfterFirstChunk?: boolean;
}

export interface SentResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  json: unknown;
}

/** One HTTP request over loopback with full control of headers (repeats included); no retries. */
export function send(url: string, options: SendOptions = {}): Promise<SentResponse> {
  const headers: Record<string, string | string[]> = { ...options.headers };
  let payload: Buffer | undefined;
  if (options.body !== undefined) {
    if (typeof options.body === 'string') payload = Buffer.from(options.body);
    else if (options.body instanceof Uint8Array) payload = Buffer.from(options.body);
    else {
      payload = Buffer.from(JSON.stringify(options.body));
      headers['content-type'] ??= 'application/json';
    }
    headers['content-length'] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'POST', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        if (options.abortAfterFirstChunk) req.destroy(new Error('aborted by the test client after the first chunk'));
      });
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const text = body.toString('utf8');
        let json: unknown;
        try {
          json = text === '' ? undefined : JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json });
      });
    });
    req.on('error', reject);
    if (options.abortAfterMs !== undefined) {
      setTimeout(() => {
        req.destroy(new Error('aborted by the test client'));
      }, options.abortAfterMs);
    }
    req.end(payload);
  });
}

/** Asserts an `application/problem+json` answer of Idem: its status, `urn:idem:problem:<type>`, and a detail that says what to do. */
export function assertProblem(response: SentResponse, status: number, type: string): void {
  assert.equal(response.status, status, `expected ${status}, got ${response.status}: ${response.text}`);
  assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
  const problem = response.json as { type: string; status: number; detail: string };
  assert.equal(problem.type, `urn:idem:problem:${type}`);
  assert.equal(problem.status, status);
  assert.ok(problem.detail.length > 10, 'the detail says what to do');
}
