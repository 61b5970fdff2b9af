/**
 * Where a step database gets the connection a step's transaction runs on: checked out of a pool
 * for that transaction alone, or the caller's one connection, one transaction at a time.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface ConnectionSource<C, Q> {
  /** Runs `body` (a whole transaction) on a connection no other transaction of ours uses meanwhile. */
  use<T>(body: (connection: C) => Promise<T>): Promise<T>;
  /**
   * Runs `body` (statements outside any transaction) on `Q`: the pool itself, or the one
   * connection in its turn, so a read never lands inside a transaction of ours and sees its
   * uncommitted row.
   */
  outside<T>(body: (queryable: Q) => Promise<T>): Promise<T>;
}

/** Connections whose state is unknown (a ROLLBACK failed on them): the pool destroys them. */
const broken = new WeakSet<object>();

/** Marks `connection` as unusable, so `use` hands it back to its pool to be destroyed, not reused. */
export function discard(connection: object): void {
  broken.add(connection);
}

/**
 * Connections checked out of `pool` by `acquire`, one per transaction, and given back by
 * `release` (with `destroy` true when the connection was `discard`ed).
 */
export function pooledConnections<C extends object, P>(
  pool: P,
  acquire: () => Promise<C>,
  release: (connection: C, destroy: boolean) => void,
): ConnectionSource<C, P> {
  return {
    async use(body) {
      const connection = await acquire();
      try {
        return await body(connection);
      } finally {
        const destroy = broken.has(connection);
        broken.delete(connection);
        release(connection, destroy);
      }
    },
    outside: (body) => body(pool),
  };
}

/** The turns queued on each single connection: the promise the last one settles. */
const tails = new WeakMap<object, Promise<void>>();
/** The connections whose turn the current async context runs in (inside a step's `fn`). */
const turnsHeld = new AsyncLocalStorage<ReadonlySet<object>>();

/**
 * The caller's one connection. A connection runs one transaction at a time: a second `BEGIN`
 * would join (or break) the first. So every use, by any step database made on this connection,
 * waits for the ones before it. A use from inside another's turn on the same connection (a
 * `runOnce` inside a step's `fn`) would wait for itself forever: it throws `nested()` instead.
 */
export function oneConnection<C extends object>(connection: C, nested: () => Error): ConnectionSource<C, C> {
  const inTurn = async <T>(body: (connection: C) => Promise<T>): Promise<T> => {
    const held = turnsHeld.getStore();
    if (held?.has(connection)) throw nested();
    const previous = tails.get(connection) ?? Promise.resolve();
    let finish = (): void => {};
    const mine = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const tail = previous.then(() => mine);
    tails.set(connection, tail);
    await previous;
    try {
      return await turnsHeld.run(new Set([...(held ?? []), connection]), () => body(connection));
    } finally {
      finish();
      if (tails.get(connection) === tail) tails.delete(connection);
    }
  };
  return { use: inTurn, outside: inTurn };
}
