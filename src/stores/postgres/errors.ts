/**
 * Which PostgreSQL errors are configuration mistakes rather than outages, by SQLSTATE (the `code`
 * of a `pg` error), and what to fix for each.
 */
import type { MisconfigurationAdvice } from '../../store-kit/index.js';

const ADVICE: Record<string, string> = {
  /** invalid_password */
  '28P01': 'check the user and password in the store URL',
  /** invalid_authorization_specification: no such role, or pg_hba.conf lets it in from nowhere here */
  '28000': "check the user in the store URL, and that the server's pg_hba.conf lets it connect from this host",
  /** invalid_catalog_name */
  '3D000': 'check the database name in the store URL, or create the database',
  /** invalid_schema_name */
  '3F000': 'create the schema, or fix the `schema` option',
  /** insufficient_privilege */
  '42501':
    "grant the store's user what it needs: USAGE and, for the first run, CREATE on the schema; SELECT, INSERT, UPDATE and DELETE on the table",
};

/** What to fix when `error` is a configuration mistake, `undefined` when it is not. */
export const postgresMisconfiguration: MisconfigurationAdvice = (error) => {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code in ADVICE) return ADVICE[code];
  // Raised by `pg` itself when the server asks for a password and the URL gives none.
  if (error instanceof Error && error.message.includes('client password must be a string')) {
    return 'the server asks for a password and the store URL has none: add it (postgres://user:password@host/database)';
  }
  return undefined;
};
