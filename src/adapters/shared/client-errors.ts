/** Error codes Node gives a stream or socket whose peer went away (reset, aborted, closed early). */
const CLIENT_GONE_CODES = new Set(['ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE']);

/**
 * True when `error` says the client went away (the connection was reset or aborted, a stream was
 * closed before it ended) rather than that the handler or the server failed. Such a request is
 * not the handler's fault: its claim is kept (see `ResponseRecording.abandon`), never released.
 */
export function isClientGone(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && CLIENT_GONE_CODES.has(code)) return true;
  return message === 'aborted'; // what Node's IncomingMessage gives a body cut off mid-way
}

/**
 * True when a thrown error carries a 4xx status (`status` or `statusCode`): a deliberate answer
 * (Fastify's and Koa's HTTP errors), recorded under the cache policy like a returned one; any
 * other thrown error is a failure that releases the key.
 */
export function hasClientErrorStatus(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { status, statusCode } = error as { status?: unknown; statusCode?: unknown };
  const code = statusCode ?? status;
  return typeof code === 'number' && code >= 400 && code < 500;
}
