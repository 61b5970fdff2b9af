import type { IncomingMessage } from 'node:http';
import { readNodeBody } from '../../adapters/shared/node-request.js';

export { DRAIN_CAP_BYTES, refuseTooLarge } from '../../adapters/shared/node-request.js';

/**
 * Reads a request body up to `limitBytes` with the adapters' shared reader. Resolves the whole
 * body, or `'too-large'` as soon as it passes the limit (the rest is not read: see
 * `refuseTooLarge`). Rejects when the client goes away before its body ended.
 */
export async function readBodyUpTo(req: IncomingMessage, limitBytes: number): Promise<Buffer | 'too-large'> {
  const read = await readNodeBody(req, limitBytes);
  if (read === 'aborted') throw new Error('the client closed the connection before its body ended');
  return read;
}
