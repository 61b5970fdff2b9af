/**
 * The start-up check of the server's eviction policy. Every Idem record carries a TTL (PEXPIRE),
 * so any policy but `noeviction` lets Redis drop records under memory pressure, `volatile-*`
 * included; a key whose completed record was evicted runs again.
 */
import type { RedisLike } from './redis-store.js';

/**
 * Reads `maxmemory-policy` (`CONFIG GET`) and calls `warn` once with what to change when it is not
 * `noeviction`. Never throws: a server that refuses CONFIG (managed Redis renames or forbids it)
 * or answers in a shape not known here is left unchecked, silently.
 */
export async function checkEvictionPolicy(client: RedisLike, warn: (message: string) => void): Promise<void> {
  let policy: string | undefined;
  try {
    const reply = await client.callBuffer('CONFIG', 'GET', 'maxmemory-policy');
    policy = Array.isArray(reply) && reply.length >= 2 ? String(reply[1]) : undefined;
  } catch {
    return;
  }
  if (policy === undefined || policy === 'noeviction') return;
  const message = `[idem] [redis] the server's maxmemory-policy is ${policy}: once Redis reaches maxmemory it may evict Idem's records (they all have a TTL, so volatile-* policies evict them too), and a key whose record was evicted runs again. Set maxmemory-policy to noeviction, or give Idem a Redis of its own; see "What Redis needs" in docs/stores.md.`;
  try {
    warn(message);
  } catch {
    // The warning is advice: a throwing handler must not fail the operation that opened the client.
  }
}
