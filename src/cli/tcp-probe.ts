import { connect } from 'node:net';

/**
 * Opens one TCP connection to `host:port` and closes it. Rejects with the socket's own error
 * (`connect ECONNREFUSED 127.0.0.1:1`), which says more than a driver's retry bookkeeping.
 */
export function probeTcp(host: string, port: number, timeoutMs = 3000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const socket = connect({ host: host.replace(/^\[|\]$/g, ''), port, timeout: timeoutMs });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('timeout', () => {
      socket.destroy();
      reject(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`));
    });
    socket.once('error', reject);
  });
}
