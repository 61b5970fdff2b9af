/**
 * Which MySQL / MariaDB errors are configuration mistakes rather than outages, by server error
 * number (the `errno` of a `mysql2` error), and what to fix for each.
 */
import type { MisconfigurationAdvice } from '../../store-kit/index.js';

const CHECK_CREDENTIALS = 'check the user and password in the store URL';
const GRANT =
  "grant the store's user what it needs on the database: CREATE (for the first run), SELECT, INSERT, UPDATE and DELETE";

const ADVICE: Record<number, string> = {
  /** ER_DBACCESS_DENIED_ERROR */
  1044: GRANT,
  /** ER_ACCESS_DENIED_ERROR */
  1045: CHECK_CREDENTIALS,
  /** ER_NO_DB_ERROR */
  1046: 'put the database in the store URL (mysql://user:password@host:3306/database)',
  /** ER_BAD_DB_ERROR */
  1049: 'check the database name in the store URL, or create the database',
  /** ER_TABLEACCESS_DENIED_ERROR */
  1142: GRANT,
  /** ER_COLUMNACCESS_DENIED_ERROR */
  1143: GRANT,
  /** ER_SPECIFIC_ACCESS_DENIED_ERROR */
  1227: GRANT,
  /** ER_NOT_SUPPORTED_AUTH_MODE */
  1251: "the user's authentication plugin is not one mysql2 supports: switch the user to mysql_native_password or caching_sha2_password",
  /** ER_ACCESS_DENIED_NO_PASSWORD_ERROR */
  1698: CHECK_CREDENTIALS,
};

/** What to fix when `error` is a configuration mistake, `undefined` when it is not. */
export const mysqlMisconfiguration: MisconfigurationAdvice = (error) => {
  const errno = (error as { errno?: unknown } | null)?.errno;
  return typeof errno === 'number' ? ADVICE[errno] : undefined;
};
