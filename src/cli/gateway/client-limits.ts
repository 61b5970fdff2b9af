import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { isClientGone } from '../../adapters/shared/client-errors.js';
import { ErrorCode, IdempotencyError } from '../../core/errors.js';
import { problemResponse } from '../../http/problem.js';
import { requestInvalid } from './gateway-problems.js';

export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_CONNECTIONS = 4096;

/** The gateway's limits on its clients (see `GatewayOptions`). */
export interface ClientLimitOptions {
  /** Longest time a client may take to send a request's head, in ms; then 408 and the connection closes. Default 10,000. */
  headersTimeoutMs?: number;
  /** Longest time a client may take to send a whole request, body included, in ms; then 408. At least `headersTimeoutMs`. Default 60,000. */
  requestTimeoutMs?: number;
  /** Most client connections open at once; more are closed as they arrive. Default 4,096. */
  maxConnections?: number;
}

/**
 * Node's server options for the slow-client timeouts, checked often enough to hold to them (Node
 * looks every 30 s by default), and the connection cap.
 */
export function clientLimits(options: ClientLimitOptions) {
  // A default gives way to the other one given: a head never has longer than its whole request.
  const requestTimeout = positive(
    'requestTimeoutMs',
    options.requestTimeoutMs ?? Math.max(DEFAULT_REQUEST_TIMEOUT_MS, options.headersTimeoutMs ?? 0),
  );
  const headersTimeout = positive(
    'headersTimeoutMs',
    options.headersTimeoutMs ?? Math.min(DEFAULT_HEADERS_TIMEOUT_MS, requestTimeout),
  );
  if (headersTimeout > requestTimeout) {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      `[idem] headersTimeoutMs (${headersTimeout}) must not be longer than requestTimeoutMs (${requestTimeout}): the head is part of the request.`,
    );
  }
  const connectionsCheckingInterval = Math.max(10, Math.min(1000, Math.floor(headersTimeout / 4)));
  return {
    server: { headersTimeout, requestTimeout, connectionsCheckingInterval },
    maxConnections: positive('maxConnections', options.maxConnections ?? DEFAULT_MAX_CONNECTIONS),
  };
}

function positive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      `[idem] ${name} must be a whole number above 0, got ${value}.`,
    );
  }
  return value;
}

/**
 * A request Node's parser refused (malformed, `Transfer-Encoding` with `Content-Length`, headers
 * too large), or a client too slow to send it: one problem answer, if nothing was sent on the
 * connection yet, then the connection is closed. Nothing reaches the upstream.
 */
export function refuseMalformed(error: Error & { code?: string; reason?: string }, socket: Socket): void {
  if (!isClientGone(error) && socket.writable && socket.bytesWritten === 0) {
    const problem = problemResponse(
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new IdempotencyError(
            ErrorCode.REQUEST_TIMEOUT,
            '[idem] the request did not arrive in time (--headers-timeout, --request-timeout); nothing was forwarded.',
          )
        : requestInvalid(
            `the request is malformed (${error.reason ?? error.message}); nothing was forwarded. Send one well-formed HTTP/1.1 request, with Content-Length or Transfer-Encoding: chunked, not both.`,
          ),
    );
    const head = [`HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? ''}`];
    for (const [name, value] of problem.headers) head.push(`${name}: ${value}`);
    head.push(`content-length: ${problem.body.length}`, 'connection: close', '', '');
    socket.write(Buffer.concat([Buffer.from(head.join('\r\n'), 'latin1'), problem.body]));
  }
  socket.destroy(error);
}
