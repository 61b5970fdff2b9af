import type { ServerResponse } from 'node:http';
import { sendResponse } from '../../adapters/shared/node-response.js';
import { ErrorCode, IdempotencyError } from '../../core/errors.js';
import { problemResponse } from '../../http/problem.js';

/**
 * The gateway's own refusals, as Idem errors: each goes out through `problemResponse`, the one
 * table from code to HTTP answer, like every other refusal. `keyed` says whether the request held
 * a key, so the answer says what became of it.
 */

export function upstreamUnavailable(upstream: URL, error: unknown, keyed: boolean): IdempotencyError {
  const reason = error instanceof Error ? error.message : String(error);
  const key = keyed ? '; nothing was stored and the key was released: retry with the same key' : '';
  return new IdempotencyError(
    ErrorCode.UPSTREAM_UNAVAILABLE,
    `[idem] the upstream ${upstream.origin} did not answer (${reason})${key}.`,
  );
}

export function upstreamTimeout(timeoutMs: number, keyed: boolean): IdempotencyError {
  const key = keyed ? '; the key was released so that a retry with the same key runs again' : '';
  return new IdempotencyError(
    ErrorCode.UPSTREAM_TIMEOUT,
    `[idem] the upstream sent nothing for ${timeoutMs} ms (--upstream-timeout)${key}.`,
  );
}

/** The upstream sent a status, then broke off its body (or went silent, or shutdown cut it). */
export function upstreamBrokeOff(status: number, why: string, keyed: boolean): IdempotencyError {
  const key = keyed
    ? ' It may have acted on the request, so its key is not released: a retry with the same key gets 410 response-not-stored instead of running it again (a status the policy does not store, such as 5xx, releases the key).'
    : '';
  return new IdempotencyError(
    ErrorCode.UPSTREAM_UNAVAILABLE,
    `[idem] the upstream answered ${status}, then ${why} before the end of its response; the response was not stored.${key}`,
  );
}

/** Shutdown answered before the upstream did. */
export function shuttingDown(keyReleased: boolean): IdempotencyError {
  return new IdempotencyError(
    ErrorCode.SHUTTING_DOWN,
    keyReleased
      ? '[idem] the gateway shut down before the upstream answered; the key was released: retry with the same key.'
      : '[idem] the gateway is shutting down; the request was not forwarded: retry it (with the same key, if it had one).',
  );
}

export function requestInvalid(detail: string): IdempotencyError {
  return new IdempotencyError(ErrorCode.REQUEST_INVALID, `[idem] ${detail}`);
}

export function notFound(detail: string): IdempotencyError {
  return new IdempotencyError(ErrorCode.NOT_FOUND, `[idem] ${detail}`);
}

/**
 * Answers `error` on `res`, replacing headers the upstream's head may have set, if nothing was
 * sent yet; a response already under way can only be cut off. Never throws: the client may have
 * gone, the response may have ended.
 */
export function answerProblem(res: ServerResponse, error: IdempotencyError): void {
  if (res.destroyed || res.writableEnded) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const name of res.getHeaderNames()) if (name !== 'connection') res.removeHeader(name);
  sendResponse(res, problemResponse(error));
}
