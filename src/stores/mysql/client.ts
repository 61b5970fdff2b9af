/**
 * What the MySQL / MariaDB store asks of the client it is given: the shapes a `mysql2/promise`
 * pool and its connections already have, so any of them (or a wrapper) fits.
 */

/** A value the store binds: text, a number of ms, bytes (Buffer) or NULL. */
export type MysqlValue = string | number | Buffer | null;

/** What the store passes to `query`: a subset of `mysql2`'s `QueryOptions`. */
export interface MysqlQuery {
  sql: string;
  /** Named parameters, for `:name` placeholders in `sql`. */
  values: Record<string, MysqlValue>;
  /** Always true: the store's statements use `:name` placeholders. */
  namedPlaceholders: boolean;
  /** Client-side limit on the statement, in ms; the connection is dropped when it passes. */
  timeout: number;
  /** Always false: the store reads rows as flat objects, whatever the pool's default. */
  rowsAsArray: boolean;
  /** Always false, for the same reason. */
  nestTables: boolean;
}

/**
 * The part of a `mysql2/promise` pool the store uses. A `mysql2` promise `Pool` fits as it is (so
 * does a single `Connection`, which runs one operation at a time). `query` resolves to
 * `[rows, fields]` for a SELECT and to `[{ affectedRows, info }, undefined]` for a change.
 */
export interface MysqlPoolLike {
  query(options: MysqlQuery): Promise<[unknown, unknown]>;
  /**
   * A connection of the pool's own, for the two journal operations that run a transaction
   * (`append` of entry 0, `reopen`). A `mysql2` pool has it; without it (a single `Connection`)
   * those two fail with `INVALID_OPTIONS`, and everything else works.
   */
  getConnection?(): Promise<MysqlConnectionLike>;
}

/** A connection taken from a pool (a `mysql2` `PoolConnection` fits). */
export interface MysqlConnectionLike {
  query(options: MysqlQuery): Promise<[unknown, unknown]>;
  /** Gives the connection back to its pool, after a transaction that ended. */
  release(): void;
  /** Closes the connection and drops it from its pool (the server rolls back what it left open). */
  destroy(): void;
}
