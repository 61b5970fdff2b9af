import type { StoreName } from './store-targets.js';

/** The servers of the HTTP part: the same Express 5 handler, bare or behind one library on one store. */
export const VARIANTS = [
  { id: 'bare', library: 'none (bare handler)', store: undefined, ours: false },
  { id: 'idem-memory', library: 'idem/express', store: 'memory', ours: false },
  { id: 'idem-sqlite', library: 'idem/express', store: 'sqlite', ours: false },
  { id: 'idem-redis', library: 'idem/express', store: 'redis', ours: false },
  { id: 'idem-postgres', library: 'idem/express', store: 'postgres', ours: false },
  { id: 'idem-sqlite-cached', library: 'idem/express, replayCacheMs 60 s', store: 'sqlite', ours: false },
  { id: 'idem-redis-cached', library: 'idem/express, replayCacheMs 60 s', store: 'redis', ours: false },
  { id: 'idem-postgres-cached', library: 'idem/express, replayCacheMs 60 s', store: 'postgres', ours: false },
  { id: 'express-idempotency', library: 'express-idempotency', store: 'memory', ours: false },
  { id: 'node-idempotency-memory', library: '@node-idempotency/core + our glue', store: 'memory', ours: true },
  { id: 'node-idempotency-redis', library: '@node-idempotency/core + our glue', store: 'redis', ours: true },
  { id: 'minimal-memory', library: 'minimal claim-then-write middleware', store: 'memory', ours: true },
  { id: 'minimal-redis', library: 'minimal claim-then-write middleware', store: 'redis', ours: true },
] as const satisfies readonly { id: string; library: string; store: StoreName | undefined; ours: boolean }[];

export type Variant = (typeof VARIANTS)[number];
export type VariantId = Variant['id'];

/** What bench/http-server.ts is started with (as JSON in argv). */
export interface ServerConfig {
  variant: VariantId;
  sqlitePath: string;
  postgresUrl: string;
  postgresTable: string;
  redisUrl: string;
  /** Key prefix for idem's Redis store; the node-idempotency glue adds `nodeidem:` to it. */
  redisPrefix: string;
}

/** What the server tells its parent once it listens. */
export interface ServerReady {
  port: number;
}
