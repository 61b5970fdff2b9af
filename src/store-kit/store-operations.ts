import { ErrorCode, IdempotencyError, isIdempotencyError } from '../core/errors.js';
import { type MisconfigurationAdvice, storeClosed, storeFailure } from './errors.js';
import { LazyClient, type LazyClientOptions } from './lazy-client.js';

export interface StoreOperationsOptions<C> extends LazyClientOptions<C> {
  /** The store's short name, as in its `name` (`postgres`, `dynamodb`): it opens every message. */
  store: string;
  /** The class to create anew after `close()`, named in the `STORE_CLOSED` message (`PostgresStore`). */
  className: string;
  /**
   * Recognises a driver error that is a configuration mistake (wrong password, unknown table) and
   * says what to fix; `undefined` for anything else, which becomes `STORE_UNAVAILABLE`. Default:
   * every driver error is `STORE_UNAVAILABLE`.
   */
  misconfiguration?: MisconfigurationAdvice;
  /**
   * The store's own error for a driver error it can explain better than the generic
   * `STORE_UNAVAILABLE` message (SQLite: the file is locked by another process), or `undefined`
   * to leave it to `misconfiguration` and the default. Default: none.
   */
  explain?(operation: string, error: unknown): IdempotencyError | undefined;
}

/**
 * The one wrapper around every operation of a store: refuse after `close()` (`STORE_CLOSED`), get
 * the client ready (opened on first use, prepared once), run the operation, and map whatever the
 * driver throws to `STORE_UNAVAILABLE` or `STORE_MISCONFIGURED` with the driver's error as `cause`.
 * Idem's own errors (an `INVALID_OPTIONS` the operation threw) pass through unchanged; an
 * operation that fails because the store was closed under it reports `STORE_CLOSED`.
 *
 * @example
 * ```ts
 * class MyStore implements Store {
 *   readonly name = 'mine';
 *   readonly #ops: StoreOperations<MyClient>;
 *   constructor(options: { client: MyClient }) {
 *     this.#ops = new StoreOperations({ store: 'mine', className: 'MyStore', given: options.client });
 *   }
 *   claim(input: ClaimInput) {
 *     return this.#ops.run('claim', (client) => claimOnServer(client, input));
 *   }
 *   close() { return this.#ops.close(); }
 * }
 * ```
 * docs/stores.md has the whole of such a store.
 */
export class StoreOperations<C> {
  readonly #client: LazyClient<C>;
  readonly #store: string;
  readonly #className: string;
  readonly #misconfiguration: MisconfigurationAdvice;
  readonly #explain: StoreOperationsOptions<C>['explain'];

  constructor(options: StoreOperationsOptions<C>) {
    if (typeof options?.store !== 'string' || typeof options.className !== 'string') {
      throw new IdempotencyError(ErrorCode.INVALID_OPTIONS, '[idem] StoreOperations needs `store` and `className`.');
    }
    this.#client = new LazyClient(options);
    this.#store = options.store;
    this.#className = options.className;
    this.#misconfiguration = options.misconfiguration ?? (() => undefined);
    this.#explain = options.explain;
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#client.closed;
  }

  /**
   * Runs `operation` (its name opens error messages: `claim`, `list`) with the ready client:
   * refused after close, driver errors mapped.
   */
  async run<T>(operation: string, body: (client: C) => T | Promise<T>): Promise<T> {
    if (this.#client.closed) throw storeClosed(this.#store, this.#className, operation);
    try {
      return await body(this.#client.current ?? (await this.#client.get()));
    } catch (error) {
      throw this.#failure(operation, error);
    }
  }

  /** Ends the client the store opened itself (a given one stays open). Safe to call more than once. */
  close(): Promise<void> {
    return this.#client.close();
  }

  #failure(operation: string, error: unknown): IdempotencyError {
    if (isIdempotencyError(error)) return error;
    if (this.#client.closed) return storeClosed(this.#store, this.#className, operation);
    return this.#explain?.(operation, error) ?? storeFailure(this.#store, operation, error, this.#misconfiguration);
  }
}
