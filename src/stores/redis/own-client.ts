/** The ioredis client the Redis store opens itself from a `url`, and how it waits for it. */
import { importDriver, type OwnClient } from '../../store-kit/index.js';
import { CorkedWrites } from './corked-writes.js';
import { redisMisconfiguration } from './errors.js';
import type { RedisLike } from './redis-store.js';

export interface OwnClientOptions {
  url: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

export async function openOwnClient(options: OwnClientOptions): Promise<OwnClient<RedisLike>> {
  // Imported here so that `idem/redis` loads without ioredis when a client is passed in.
  const { Redis } = await importDriver('redis', 'ioredis', 'your own `client`', () => import('ioredis'));
  const redis = new Redis(options.url, {
    connectTimeout: options.connectTimeoutMs,
    commandTimeout: options.commandTimeoutMs,
    // A command is refused at once while the connection is down (the handshake below waits for
    // the first one): a down server is a prompt STORE_UNAVAILABLE. Queued instead, each call
    // waited for the next failed reconnect attempt, up to 2 s and more as the attempts spaced out.
    enableOfflineQueue: false,
    // A command in flight when the connection drops is sent once more after the reconnection.
    maxRetriesPerRequest: 1,
    // Reconnect every 50, 100, ... ms, at most 500 ms apart (ioredis: 2 s), so the store is back
    // within half a second of the server.
    retryStrategy: (attempts: number) => Math.min(attempts * 50, 500),
  });
  // Errors reach the caller through the command that failed; without a listener ioredis logs each one.
  redis.on('error', () => {});
  // Wait for the connection's handshake before the first command. A SELECT of a database the
  // server does not have only raises an 'error' event, and ioredis then runs every command on
  // database 0: records would land where no one looks for them. Refused credentials are caught
  // here too, before ioredis starts reconnecting with them again and again.
  const refused = await handshake(redis);
  if (refused !== undefined) {
    redis.disconnect();
    throw refused;
  }
  const end = async (): Promise<void> => {
    try {
      await redis.quit();
    } catch {
      redis.disconnect();
    }
  };
  const writes = new CorkedWrites(redis);
  const client: RedisLike = {
    callBuffer: (command, ...args) =>
      writes
        .send(() => redis.callBuffer(command, ...args))
        .catch(async (error: unknown) => {
          // A refusal while disconnected involves no I/O: without this turn of the event loop, a
          // caller that retries at once would keep the process in microtasks, and ioredis's
          // reconnect timer would never run.
          await new Promise((resolve) => setImmediate(resolve));
          throw error;
        }),
  };
  return { client, end };
}

/**
 * Resolves once `redis` is ready or reports its first error: with that error when it is a
 * configuration mistake (see `redisMisconfiguration`), else with nothing (an outage is left to the
 * commands, which fail or wait for the reconnection as configured).
 */
function handshake(redis: import('ioredis').Redis): Promise<Error | undefined> {
  return new Promise((resolve) => {
    const settle = (error?: Error): void => {
      redis.off('ready', settle);
      redis.off('error', settle);
      resolve(error !== undefined && redisMisconfiguration(error) !== undefined ? error : undefined);
    };
    redis.once('ready', settle);
    redis.once('error', settle);
  });
}
