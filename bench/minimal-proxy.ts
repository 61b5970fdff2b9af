/**
 * The gateway bench's yardstick: a reverse proxy written the obvious way with node:http and a
 * keep-alive agent, no checks, no headers rewritten. `idem serve` with no key should cost no more
 * than this per request. Tells its parent the port over IPC.
 *
 * Usage: node --import tsx bench/minimal-proxy.ts http://127.0.0.1:<upstream port>
 */
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

const upstream = new URL(process.argv[2] ?? 'http://127.0.0.1:3000');
const agent = new Agent({ keepAlive: true, maxSockets: 512 });

const server = createServer((req, res) => {
  const forwarded = request(
    {
      hostname: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: upstream.host },
      agent,
    },
    (upstreamRes) => {
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
      upstreamRes.pipe(res);
    },
  );
  forwarded.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(forwarded);
});
server.keepAliveTimeout = 65_000;

server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port });
});

process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
