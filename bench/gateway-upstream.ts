/**
 * The upstream of the gateway benchmark, run in its own process by bench/gateway.ts: a plain
 * node:http server that answers POST /payments with 201 and a small JSON body (a new id each
 * time, so a replay can be told from a second run). GET /stats says how many payments it made.
 * Prints nothing; tells its parent the port over IPC.
 *
 * Usage: node --import tsx bench/gateway-upstream.ts
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the upstream tells its parent once it listens. */
export interface UpstreamReady {
  port: number;
}

/** What GET /stats answers. */
export interface UpstreamStats {
  payments: number;
}

let payments = 0;

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    if (req.method === 'POST' && req.url === '/payments') {
      payments += 1;
      const body = JSON.stringify({ id: `pay_${payments}`, amount: 500, currency: 'eur', status: 'succeeded' });
      res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    const body =
      req.method === 'GET' && req.url === '/stats'
        ? JSON.stringify({ payments } satisfies UpstreamStats)
        : JSON.stringify({ error: 'not found' });
    res.writeHead(req.url === '/stats' ? 200 : 404, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
});
// Longer than any run: the gateway's keep-alive connections stay open.
server.keepAliveTimeout = 65_000;

server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port } satisfies UpstreamReady);
});

process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
