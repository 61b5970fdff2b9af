import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RunningServer } from '../../src/testing/index.js';

/** Listens on a free loopback port and returns the base URL and a close that drops idle sockets. */
export async function listen(server: Server): Promise<RunningServer> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The credential test clients send: Idem refuses a keyed request it cannot tell apart from others. */
export const CALLER = { authorization: 'Bearer test-client' } as const;
