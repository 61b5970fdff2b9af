import type { HttpRequestInfo, HttpResponseData } from '../../http/http-types.js';
import { type BodyRead, lengthOf } from './request-body.js';

/** Statuses whose responses carry no body; a `Response` refuses one. */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/** Header lookup over a Web `Request`, for `HttpRequestInfo`. */
export function webHeader(request: Request): HttpRequestInfo['header'] {
  return (name) => request.headers.get(name) ?? undefined;
}

/** Declared body size from Content-Length, when the client sent one. */
export function webDeclaredLength(request: Request): number | undefined {
  return lengthOf(request.headers.get('content-length'));
}

/**
 * Reads a clone of a Web `Request`'s body (so the handler still gets it) up to `limitBytes`,
 * with the same results as the Node reader: the bytes, `'too-large'` (by Content-Length, or as
 * soon as the bytes pass the limit), or `'aborted'` when the body broke off. Never rejects.
 */
export async function readWebBody(request: Request, limitBytes: number): Promise<BodyRead<Uint8Array>> {
  if ((webDeclaredLength(request) ?? 0) > limitBytes) return 'too-large';
  const body = request.body === null ? null : request.clone().body;
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limitBytes) {
        await reader.cancel();
        return 'too-large';
      }
      chunks.push(value);
    }
  } catch {
    return 'aborted';
  }
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/** Path and query of an absolute URL (`/charges?currency=eur`). */
export function targetOf(url: string): string {
  const path = url.indexOf('/', url.indexOf('//') + 2);
  return path === -1 ? '/' : url.slice(path);
}

/** A stored or refusal response as a Web `Response`. */
export function toWebResponse(response: HttpResponseData): Response {
  const body = NULL_BODY_STATUSES.has(response.status) ? null : response.body;
  return new Response(body, { status: response.status, headers: response.headers });
}
