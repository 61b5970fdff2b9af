import type { Cluster } from 'ioredis';
import type { AdminStore } from '../../src/core/store.js';
import { RedisStore } from '../../src/stores/redis/index.js';

/** The local test server; override with IDEM_REDIS_URL. */
export const redisUrl = process.env.IDEM_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * A Redis Cluster to run the suite against as well, as `host:port` of any one node, e.g.
 * `IDEM_REDIS_CLUSTER=127.0.0.1:7101`. Unset: the Cluster tests are skipped.
 */
export const clusterNode = process.env.IDEM_REDIS_CLUSTER;

/** The key prefix of a namespace; no other namespace's prefix starts with it. */
export function prefixOf(namespace: string): string {
  return `idem_test:${namespace}:`;
}

export async function createStore(namespace: string): Promise<AdminStore> {
  return new RedisStore({ url: redisUrl, prefix: prefixOf(namespace) });
}

export async function dropStore(namespace: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(redisUrl, { connectTimeout: 5000, commandTimeout: 5000, maxRetriesPerRequest: 1 });
  try {
    await deleteMatching(redis, namespace);
  } finally {
    redis.disconnect();
  }
}

/** A store on the Cluster that ends its Cluster client on close, as the suite's child processes expect. */
class ClusterTestStore extends RedisStore {
  readonly #cluster: Cluster;

  constructor(cluster: Cluster, namespace: string) {
    super({ client: cluster, prefix: prefixOf(namespace) });
    this.#cluster = cluster;
  }

  override async close(): Promise<void> {
    await super.close();
    if (this.#cluster.status !== 'end') await this.#cluster.quit();
  }
}

export async function createClusterStore(namespace: string): Promise<AdminStore> {
  return new ClusterTestStore(await connectCluster(), namespace);
}

export async function dropClusterStore(namespace: string): Promise<void> {
  const cluster = await connectCluster();
  try {
    // Every node holds its own slots: SCAN each master, delete key by key (one slot per DEL).
    for (const node of cluster.nodes('master')) await deleteMatching(node, namespace);
  } finally {
    cluster.disconnect();
  }
}

async function connectCluster(): Promise<Cluster> {
  const [host = '127.0.0.1', port = '7101'] = (clusterNode ?? '').split(':');
  const { Cluster } = await import('ioredis');
  const cluster = new Cluster([{ host, port: Number(port) }], {
    redisOptions: { connectTimeout: 5000, commandTimeout: 5000, maxRetriesPerRequest: 1 },
  });
  cluster.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    cluster.once('ready', resolve);
    cluster.once('end', () => reject(new Error(`could not reach the Redis Cluster at ${clusterNode}`)));
  });
  return cluster;
}

async function deleteMatching(redis: Pick<import('ioredis').Redis, 'scan' | 'del'>, namespace: string): Promise<void> {
  let cursor = '0';
  do {
    // Every key of the namespace: its records and its indexes of runs.
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefixOf(namespace)}*`, 'COUNT', 1000);
    await Promise.all(keys.map((key) => redis.del(key)));
    cursor = next;
  } while (cursor !== '0');
}
