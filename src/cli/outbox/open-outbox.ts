/** The outbox table `idem outbox` works on, named by `--db` and `--table`, opened with a lazily imported driver. */
import { existsSync } from 'node:fs';
import { ErrorCode, isIdempotencyError } from '../../core/errors.js';
import type { OutboxStore } from '../../messaging/outbox/outbox.js';
import { CliError, ExitCode, reasonOf, usageError } from '../cli-error.js';
import { missingDriverError } from '../missing-driver.js';
import { probeTcp } from '../tcp-probe.js';

/** The database of an outbox, before it is opened. */
export type OutboxDbSpec = { kind: 'postgres' | 'mysql'; url: string } | { kind: 'sqlite'; path: string };

/** An outbox the command opened, with the database it is in (its password hidden). */
export interface OpenedOutbox {
  outbox: OutboxStore<never>;
  where: string;
}

const FORMS = 'use postgres://user@host:5432/db, mysql://user@host:3306/db or sqlite:./app.db';

/**
 * Parses `--db`: the database the application enqueues into.
 *
 * @example
 * ```ts
 * parseOutboxDb('sqlite:./app.db'); // { kind: 'sqlite', path: './app.db' }
 * ```
 */
export function parseOutboxDb(text: string | undefined): OutboxDbSpec {
  const raw = String(text ?? '').trim();
  if (raw === '') throw usageError(`--db is required: the database that holds the outbox table; ${FORMS}.`);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(raw)?.[1]?.toLowerCase();
  if (scheme === 'sqlite') {
    const path = raw.slice('sqlite:'.length).replace(/^\/\//, '');
    if (path === '') throw usageError(`--db ${JSON.stringify(raw)} names no file: write sqlite:./app.db.`);
    return { kind: 'sqlite', path };
  }
  if (scheme === 'postgres' || scheme === 'postgresql' || scheme === 'mysql' || scheme === 'mariadb') {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw usageError(`--db ${JSON.stringify(raw)} is not a valid URL: ${FORMS}.`);
    }
    if (url.hostname === '') throw usageError(`--db ${JSON.stringify(raw)} names no host: ${FORMS}.`);
    const kind = scheme.startsWith('postgres') ? 'postgres' : 'mysql';
    return { kind, url: kind === 'mysql' ? raw.replace(/^mariadb:/i, 'mysql:') : raw };
  }
  throw usageError(`--db ${JSON.stringify(raw)} is not an outbox database I know: ${FORMS}.`);
}

/** The database, with its password hidden, for messages. */
export function describeOutboxDb(spec: OutboxDbSpec): string {
  if (spec.kind === 'sqlite') return `sqlite:${spec.path}`;
  const url = new URL(spec.url);
  if (url.password !== '') url.password = '***';
  return url.toString();
}

/**
 * Opens the outbox and reads its counts, so that a database that cannot be reached, a driver
 * that is not installed or a bad table name is reported now, in one line.
 */
export async function openOutbox(spec: OutboxDbSpec, table: string | undefined): Promise<OpenedOutbox> {
  const where = describeOutboxDb(spec);
  // The outbox lives in the application's database: a file that is not there is a typo, not a new outbox.
  if (spec.kind === 'sqlite' && spec.path !== ':memory:' && !existsSync(spec.path)) {
    throw new CliError(`no database file at ${spec.path}: point --db at the application's SQLite file.`);
  }
  if (spec.kind !== 'sqlite') {
    const url = new URL(spec.url);
    const port = Number(url.port || (spec.kind === 'postgres' ? 5432 : 3306));
    try {
      await probeTcp(url.hostname, port, 3000);
    } catch (error) {
      throw new CliError(`cannot reach ${where}: ${reasonOf(error)}. Check --db and that the server is running.`);
    }
  }
  let outbox: OutboxStore<never>;
  try {
    outbox = await createOutbox(spec, table);
  } catch (error) {
    throw missingDriverError(spec.kind, error) ?? usageError(`--db ${where} --table: ${reasonOf(error)}.`);
  }
  try {
    await outbox.counts();
  } catch (error) {
    await outbox.close().catch(() => {});
    throw (
      missingDriverError(spec.kind, error) ??
      new CliError(`cannot use the outbox in ${where}: ${reasonOf(error)}.`, ExitCode.failure, { cause: error })
    );
  }
  return { outbox, where };
}

async function createOutbox(spec: OutboxDbSpec, table: string | undefined): Promise<OutboxStore<never>> {
  const options = table === undefined ? {} : { table };
  switch (spec.kind) {
    case 'postgres': {
      const { postgresOutbox } = await import('../../messaging/outbox/postgres-outbox.js');
      return postgresOutbox(spec.url, options);
    }
    case 'mysql': {
      const { mysqlOutbox } = await import('../../messaging/outbox/mysql-outbox.js');
      return mysqlOutbox(spec.url, options);
    }
    case 'sqlite': {
      const { sqliteOutbox } = await import('../../messaging/outbox/sqlite-outbox.js');
      return sqliteOutbox(spec.path, options);
    }
  }
}

/**
 * What `idem outbox <command>` reports for `error`, as one line: an option the outbox or the relay
 * refused is a usage mistake (exit 2), any other failure of theirs exit 1. Only a bug keeps its
 * stack trace.
 */
export function outboxCliError(command: string, error: unknown): unknown {
  if (error instanceof CliError || !isIdempotencyError(error)) return error;
  if (error.code === ErrorCode.INVALID_OPTIONS) return usageError(`outbox ${command}: ${reasonOf(error)}.`);
  return new CliError(`outbox ${command}: ${reasonOf(error)}.`, ExitCode.failure, { cause: error });
}
