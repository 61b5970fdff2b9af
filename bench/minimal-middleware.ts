/**
 * The reference point of the HTTP bench: the obvious claim-then-write Express middleware, the one
 * a team writes in an afternoon. SET NX claims the key with an in-progress marker, the handler runs
 * with res.json/res.send captured, the response is written under the key before it goes out, a
 * completed key replays and an in-progress one gets 409. No caller scopes, no fingerprint, no
 * size limit, no lease recovery, no header allow-list: what Idem does on top is what it costs.
 */
import type { NextFunction, Request, Response } from 'express';
import type { Redis } from 'ioredis';

/** Where the minimal middleware keeps its records: set-if-absent, get, set. */
export interface MinimalStore {
  /** Sets `key` to `value` if absent; true when it did. */
  claim(key: string, value: string): Promise<boolean>;
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
}

const IN_PROGRESS = '{"state":"in-progress"}';
const TTL_MS = 86_400_000;

export function minimalMiddleware(store: MinimalStore) {
  return async function minimalIdempotency(req: Request, res: Response, next: NextFunction): Promise<void> {
    const key = req.get('idempotency-key');
    if (key === undefined) return next();
    if (!(await store.claim(key, IN_PROGRESS))) {
      const stored = JSON.parse((await store.get(key)) ?? IN_PROGRESS) as {
        state: string;
        status: number;
        body: string;
      };
      if (stored.state !== 'done') return void res.status(409).json({ error: 'request in progress' });
      return void res.status(stored.status).set('content-type', 'application/json').send(stored.body);
    }
    const send = res.send.bind(res);
    // Express's res.json ends in res.send, so capturing send captures both.
    res.send = (body?: unknown) => {
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      store.set(key, JSON.stringify({ state: 'done', status: res.statusCode, body: text })).then(
        () => send(text),
        (error: unknown) => next(error),
      );
      return res;
    };
    next();
  };
}

/** A Map in this process. */
export class MinimalMemoryStore implements MinimalStore {
  readonly #entries = new Map<string, string>();

  async claim(key: string, value: string): Promise<boolean> {
    if (this.#entries.has(key)) return false;
    this.#entries.set(key, value);
    return true;
  }

  async get(key: string): Promise<string | undefined> {
    return this.#entries.get(key);
  }

  async set(key: string, value: string): Promise<void> {
    this.#entries.set(key, value);
  }
}

/** Redis: SET NX PX to claim, GET to replay, SET PX to complete. */
export class MinimalRedisStore implements MinimalStore {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  async claim(key: string, value: string): Promise<boolean> {
    return (await this.#redis.set(`${this.#prefix}${key}`, value, 'PX', TTL_MS, 'NX')) === 'OK';
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.#redis.get(`${this.#prefix}${key}`)) ?? undefined;
  }

  async set(key: string, value: string): Promise<void> {
    await this.#redis.set(`${this.#prefix}${key}`, value, 'PX', TTL_MS);
  }
}
