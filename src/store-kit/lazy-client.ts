/**
 * How a store gets its connection: the caller's own (an instance, or a function called on first
 * use) or one the store opens itself, and ends on `close()`.
 */
import { ErrorCode, IdempotencyError } from '../core/errors.js';

/** A client the caller gives: the instance, or a function that returns one (or a promise of one). */
export type GivenClient<T> = T | (() => T | Promise<T>);

/** The client itself: `given` as it is, or what its function returns. */
export async function resolveGiven<T>(given: GivenClient<T>): Promise<T> {
  return isFactory(given) ? given() : given;
}

function isFactory<T>(given: GivenClient<T>): given is () => T | Promise<T> {
  // Clients are objects (pools, connections); a function can only be a factory.
  return typeof given === 'function';
}

/** A client the store opened itself, and how to end it. */
export interface OwnClient<T> {
  /** The client, ready for use. */
  client: T;
  /** Ends it (closes its connections); called once, by `close()`. */
  end(): Promise<void>;
}

export interface LazyClientOptions<T> {
  /** The caller's client or function; `undefined` when the store opens its own with `openOwn`. */
  given: GivenClient<T> | undefined;
  /**
   * Opens the store's own client. Called only when `given` is `undefined`. Default: none, for a
   * store that only takes the caller's client (`given` is then required).
   */
  openOwn?(): Promise<OwnClient<T>>;
  /** Runs once on the client before its first use (to create the table, say). Default: nothing. */
  prepare?(client: T): Promise<void>;
}

/**
 * A client opened on first use and shared by every call after. Opening and preparing are each
 * memoised apart, and a failure of either is forgotten, so the next call tries that step again
 * (the server may be back): a given function is called again only after it threw, and a failed
 * `prepare` runs again on the same client.
 */
export class LazyClient<T> {
  #options: LazyClientOptions<T>;
  #client: Promise<T> | undefined;
  #prepared: Promise<void> | undefined;
  #own: OwnClient<T> | undefined;
  #closing: Promise<void> | undefined;
  #ready: T | undefined;

  constructor(options: LazyClientOptions<T>) {
    if (options.given === undefined && options.openOwn === undefined) {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        '[idem] a store needs a client: give the `given` client or an `openOwn` that opens one.',
      );
    }
    this.#options = options;
  }

  /** True once `close()` was called. `get()` does not check it: the store refuses with its own message. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * The client once it is open and prepared, `undefined` before: the hot path takes it without
   * awaiting `get()`. Not cleared by `close()`; check `closed` first.
   */
  get current(): T | undefined {
    return this.#ready;
  }

  /** The client, opened and prepared on first use. */
  async get(): Promise<T> {
    this.#client ??= this.#open().catch((error: unknown) => {
      this.#client = undefined;
      throw error;
    });
    const client = await this.#client;
    if (this.#options.prepare !== undefined) {
      this.#prepared ??= this.#options.prepare(client).catch((error: unknown) => {
        this.#prepared = undefined;
        throw error;
      });
      await this.#prepared;
    }
    this.#ready = client;
    return client;
  }

  /** Ends the client the store opened itself; a given one stays open. Every call returns the same promise. */
  close(): Promise<void> {
    this.#closing ??= this.#end();
    return this.#closing;
  }

  async #open(): Promise<T> {
    const { given } = this.#options;
    if (given !== undefined) return resolveGiven(given);
    const own = await (this.#options.openOwn as () => Promise<OwnClient<T>>)();
    this.#own = own;
    return own.client;
  }

  async #end(): Promise<void> {
    // Wait for a client still being opened, so it cannot be left open behind the store's back.
    await this.#client?.catch(() => undefined);
    await this.#own?.end();
  }
}
