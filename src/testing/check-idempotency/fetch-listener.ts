import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';

/**
 * A node:http listener over a fetch handler (a Hono app). The request body is read whole before
 * the handler runs, so a client that drops the connection afterwards does not stop the handler:
 * the server acts, as a real one would.
 */
export function fetchListener(handler: (request: Request) => Response | Promise<Response>): RequestListener {
  return async function fetchBridge(req, res) {
    try {
      writeResponse(res, await handler(await requestOf(req)));
    } catch (error) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`the fetch handler threw: ${(error as Error).message}`);
    }
  };
}

async function requestOf(req: IncomingMessage): Promise<Request> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    for (const item of [value ?? []].flat()) headers.append(name, item);
  }
  const method = req.method ?? 'GET';
  const hasBody = chunks.length > 0 && method !== 'GET' && method !== 'HEAD';
  return new Request(`http://${req.headers.host ?? '127.0.0.1'}${req.url ?? '/'}`, {
    method,
    headers,
    ...(hasBody ? { body: Buffer.concat(chunks) } : {}),
  });
}

function writeResponse(res: ServerResponse, response: Response): void {
  const out: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') out[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) out['set-cookie'] = cookies;
  res.writeHead(response.status, out);
  if (response.body === null) res.end();
  else Readable.fromWeb(response.body as NodeReadableStream).pipe(res);
}
