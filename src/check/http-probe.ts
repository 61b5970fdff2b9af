import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

/**
 * The HTTP side of `idem check` and of `idem/testing`'s `checkIdempotency` and `retryingClient`:
 * one request per connection, with the faults a network makes (a connection dropped after the
 * request was sent, a response lost after the server acted, a client that gives up).
 */

/** The endpoint under test: a URL, a method, the headers and body of every request. */
export interface ProbeTarget {
  url: URL;
  /** Upper-case method. */
  method: string;
  /** Headers sent with every request (lower-case names), e.g. authorization. */
  headers: Record<string, string>;
  /** The request body; `undefined` sends none. */
  body: Buffer | undefined;
  /** The credential header the checker added (in `headers` too) because none was given, e.g. `cookie: idem-check=1f2e3d4c`. */
  defaultCredential?: string;
}

export interface ProbeOptions {
  /** The Idempotency-Key to send; `undefined` sends none. */
  key?: string;
  /** Another body than the target's. */
  body?: Buffer;
  /** Give up after this long, in ms. */
  timeoutMs: number;
  /** Drop the connection this long after the request was fully sent, in ms, before the answer if it is slow enough. */
  dropAfterMs?: number;
  /** Drop the connection as soon as the response head arrives: the server acted, the client sees a reset. */
  dropOnResponse?: boolean;
}

/** An answer, or why there was none. */
export type ProbeResult =
  | { ok: true; status: number; headers: IncomingHttpHeaders; body: Buffer; ms: number }
  | {
      ok: false;
      error: string;
      /** The checker dropped the connection on purpose. */
      dropped: boolean;
      ms: number;
      /** With `dropOnResponse`: the status the server had answered before the drop. */
      status?: number;
    };

/** One request on its own connection (no pooling, so concurrent probes are truly concurrent). */
export function probe(target: ProbeTarget, options: ProbeOptions): Promise<ProbeResult> {
  const started = performance.now();
  const body = options.body ?? target.body;
  const headers: Record<string, string> = { ...target.headers };
  if (options.key !== undefined) headers['idempotency-key'] = `"${options.key}"`;
  if (body !== undefined) headers['content-length'] = String(body.length);
  const send = target.url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    let settled = false;
    let dropped = false;
    const done = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const req = send(target.url, { method: target.method, headers, agent: false }, (res) => {
      if (options.dropOnResponse) {
        dropped = true;
        const status = res.statusCode ?? 0;
        req.destroy();
        done({ ok: false, error: 'response dropped by the checker', dropped, ms: performance.now() - started, status });
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', (error) => done({ ok: false, error: error.message, dropped, ms: performance.now() - started }));
      res.on('end', () =>
        done({
          ok: true,
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          ms: performance.now() - started,
        }),
      );
    });
    const timer = setTimeout(
      () => req.destroy(new Error(`no answer within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    req.on('error', (error) => done({ ok: false, error: error.message, dropped, ms: performance.now() - started }));
    if (options.dropAfterMs !== undefined) {
      const dropAfterMs = options.dropAfterMs;
      req.once('finish', () => {
        setTimeout(() => {
          if (settled) return;
          dropped = true;
          req.destroy(new Error('connection dropped by the checker'));
        }, dropAfterMs);
      });
    }
    req.end(body);
  });
}
