import type { OutgoingMessage, ServerResponse } from 'node:http';
import type { HttpResponseData } from '../../http/http-types.js';

/** Sends a stored or refusal response on a plain Node response. */
export function sendResponse(res: ServerResponse, response: HttpResponseData): void {
  res.statusCode = response.status;
  for (const [name, value] of response.headers) res.appendHeader(name, value);
  res.setHeader('content-length', response.body.length);
  endWithBody(res, response.body);
}

/**
 * Ends a request or response with its whole body, in one write with the head when the body is
 * small. Node writes its head and a string body as one string, but a Buffer body as a second
 * chunk; Latin-1 maps each byte to one character and back, so a small body goes as a string,
 * byte for byte. (One write instead of two is worth several percent of throughput.)
 */
export function endWithBody(message: OutgoingMessage, body: Uint8Array): void {
  if (body.length > ONE_WRITE_BYTES) message.end(body);
  else message.end(Buffer.from(body.buffer, body.byteOffset, body.length).toString('latin1'), 'latin1');
}

/** Largest body `endWithBody` sends in one string with the head. */
const ONE_WRITE_BYTES = 16 * 1024;
