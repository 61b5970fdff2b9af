import { isDriverMissing } from '../store-kit/driver.js';
import { CliError, ExitCode } from './cli-error.js';
import type { StoreSpec } from './store-url.js';

/** The package each store loads, and what to install (SQLite's driver 13 does not run on Node 20). */
const DRIVERS = {
  sqlite: { driver: 'better-sqlite3', install: 'better-sqlite3@12' },
  postgres: { driver: 'pg', install: 'pg' },
  mysql: { driver: 'mysql2', install: 'mysql2' },
  redis: { driver: 'ioredis', install: 'ioredis' },
} as const;

/**
 * The one-line error for a store whose driver is not installed, when that is what `error` (or
 * any error in its `cause` chain) says; `undefined` for any other failure. Without it, the
 * module-not-found error reads as "cannot reach the store: check that the server is running".
 */
export function missingDriverError(kind: StoreSpec['kind'], error: unknown): CliError | undefined {
  if (kind === 'memory') return undefined;
  const { driver, install } = DRIVERS[kind];
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current !== undefined && current !== null; depth++) {
    if (isDriverMissing(current, driver)) {
      return new CliError(
        `the ${kind} store needs its driver, ${driver}, which is not installed: run npm i ${install} where idem is installed (npm i -g ${install} for a global idem), then try again.`,
        ExitCode.failure,
        { cause: error },
      );
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
