/** How a store loads its driver, an optional peer dependency, and says so when it is missing. */
import { ErrorCode, IdempotencyError } from '../core/errors.js';

/**
 * Runs `load` (the store's `import()` of its driver). A driver that is not installed fails with
 * `STORE_UNAVAILABLE` whose message names the `npm i` to run, rather than the bare
 * `ERR_MODULE_NOT_FOUND`, which further up reads like a server that cannot be reached.
 * `install` is what to install (`pg`, `better-sqlite3@12`); `instead` the option that passes
 * the caller's own client. Any other failure is thrown as it is.
 */
export async function importDriver<T>(
  store: string,
  install: string,
  instead: string,
  load: () => Promise<T>,
): Promise<T> {
  try {
    return await load();
  } catch (error) {
    const driver = install.replace(/(.)@.*$/, '$1');
    if (!isDriverMissing(error, driver)) throw error;
    throw new IdempotencyError(
      ErrorCode.STORE_UNAVAILABLE,
      `[idem] [${store}] its driver ${driver} is not installed: run npm i ${install}, or pass ${instead}.`,
      { cause: error },
    );
  }
}

/** True when `error` says that the package `driver` itself cannot be found (not one of its own imports). */
export function isDriverMissing(error: unknown, driver: string): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return false;
  return typeof message === 'string' && message.includes(`'${driver}'`);
}
