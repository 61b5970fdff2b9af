/**
 * OUR glue, not the library's: @node-idempotency/core has no Express adapter in this tree (its
 * @node-idempotency/express and storage-adapter packages are not installed), so the benchmark
 * drives its core (`onRequest` before the handler, `onResponse` after it) from this thin Express
 * middleware, over two storage adapters written here to its `StorageAdapter` contract.
 * Like idem, the response is stored after it is sent, without holding the client up.
 */
import {
  Idempotency,
  IdempotencyError,
  IdempotencyErrorCodes,
  type IdempotencyParams,
  type IdempotencyResponse,
} from '@node-idempotency/core';
import type { StorageAdapter } from '@node-idempotency/storage';
import type { NextFunction, Request, Response } from 'express';
import type { Redis } from 'ioredis';

/** In this process's memory, with the TTL the core asks for. */
export class MemoryStorage implements StorageAdapter {
  readonly #entries = new Map<string, { value: string; expiresAtMs: number }>();

  async setIfNotExists(key: string, value: string, { ttl }: { ttl?: number } = {}): Promise<boolean> {
    const current = this.#entries.get(key);
    if (current !== undefined && current.expiresAtMs > Date.now()) return false;
    this.#entries.set(key, { value, expiresAtMs: Date.now() + (ttl ?? Number.POSITIVE_INFINITY) });
    return true;
  }

  async set(key: string, value: string, { ttl }: { ttl?: number }): Promise<void> {
    this.#entries.set(key, { value, expiresAtMs: Date.now() + (ttl ?? Number.POSITIVE_INFINITY) });
  }

  async get(key: string): Promise<string | undefined> {
    const current = this.#entries.get(key);
    return current !== undefined && current.expiresAtMs > Date.now() ? current.value : undefined;
  }
}

/** On Redis, the way the library's Redis adapter works: SET NX PX, SET PX, GET. */
export class RedisStorage implements StorageAdapter {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  async setIfNotExists(key: string, value: string, { ttl }: { ttl?: number } = {}): Promise<boolean> {
    const reply = await this.#redis.set(`${this.#prefix}${key}`, value, 'PX', ttl ?? 86_400_000, 'NX');
    return reply === 'OK';
  }

  async set(key: string, value: string, { ttl }: { ttl?: number }): Promise<void> {
    await this.#redis.set(`${this.#prefix}${key}`, value, 'PX', ttl ?? 86_400_000);
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.#redis.get(`${this.#prefix}${key}`)) ?? undefined;
  }
}

const statusOf: Record<IdempotencyErrorCodes, number> = {
  [IdempotencyErrorCodes.IDEMPOTENCY_KEY_LEN_EXEEDED]: 400,
  [IdempotencyErrorCodes.IDEMPOTENCY_KEY_MISSING]: 400,
  [IdempotencyErrorCodes.IDEMPOTENCY_FINGERPRINT_MISSMATCH]: 422,
  [IdempotencyErrorCodes.REQUEST_IN_PROGRESS]: 409,
};

/** Express middleware over `Idempotency#onRequest` / `#onResponse`; captures what the handler sends. */
export function nodeIdempotencyGlue(storage: StorageAdapter) {
  const idempotency = new Idempotency(storage);
  return async function nodeIdempotencyGlue(req: Request, res: Response, next: NextFunction): Promise<void> {
    const request: IdempotencyParams = {
      headers: req.headers,
      path: req.path,
      method: req.method,
      body: req.body as Record<string, unknown> | undefined,
    };
    let cached: IdempotencyResponse<unknown, unknown> | undefined;
    try {
      cached = await idempotency.onRequest(request);
    } catch (error) {
      if (error instanceof IdempotencyError) {
        res.status(statusOf[error.code] ?? 400).json({ error: error.code });
        return;
      }
      next(error);
      return;
    }
    if (cached !== undefined) {
      const { status, contentType } = (cached.additional ?? {}) as { status?: number; contentType?: string };
      if (contentType !== undefined) res.type(contentType);
      res.status(status ?? 200).send(cached.body);
      return;
    }
    const send = res.send;
    res.send = function glueSend(this: Response, body?: unknown) {
      res.send = send;
      const sent = send.call(this, body);
      const additional = { status: res.statusCode, contentType: res.get('content-type') };
      void idempotency.onResponse(request, { body, additional }).catch(() => {});
      return sent;
    } as Response['send'];
    next();
  };
}
