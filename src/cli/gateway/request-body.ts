import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendResponse } from '../../adapters/node-http/server-response.js';
import { requestTooLarge } from '../../http/problem.js';

/**
 * Most bytes of a refused body still read after the 413 went out, so that a client a little over
 * the limit reads its answer instead of a reset connection. Past it the connection is closed: a
 * client cannot make the gateway read a body of any size.
 */
export const DRAIN_CAP_BYTES = 64 * 1024;

/**
 * Reads a request body up to `limitBytes`. Resolves the whole body, or `'too-large'` as soon as
 * it passes the limit (the rest is not read: see `refuseTooLarge`). Rejects when the client goes
 * away before its body ended.
 */
export function readBodyUpTo(req: IncomingMessage, limitBytes: number): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        stop();
        req.pause();
        resolve('too-large');
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      stop();
      reject(error);
    };
    const onClose = () => onError(new Error('the client closed the connection before its body ended'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/**
 * Answers 413 for a body over `limitBytes`, then reads what the client still sends, discarding
 * it, up to `DRAIN_CAP_BYTES`; past that the connection is closed. A body that ends within the
 * cap leaves the connection open for the client's next request.
 */
export function refuseTooLarge(req: IncomingMessage, res: ServerResponse, limitBytes: number): void {
  const declared = Number(req.headers['content-length']);
  sendResponse(res, requestTooLarge(limitBytes, Number.isSafeInteger(declared) ? declared : undefined));
  if (req.complete) return;
  let drained = 0;
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_CAP_BYTES) req.socket.destroy();
  });
  req.on('error', () => {});
  req.resume();
}
