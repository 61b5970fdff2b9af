/**
 * Table and schema names go into the SQL text (a statement cannot bind them), so the server
 * stores take only names that need no escaping on any server, and quote them.
 */
import { invalidOptions } from './errors.js';

const IDENTIFIER = /^[A-Za-z0-9_]+$/;

/**
 * Throws `INVALID_OPTIONS` unless `value`, the `option` name given to `store`, is 1 to `maxLength`
 * letters, digits or underscores.
 */
export function checkIdentifier(store: string, option: 'table' | 'schema', value: string, maxLength: number): void {
  if (!IDENTIFIER.test(value) || value.length > maxLength) {
    throw invalidOptions(
      store,
      `the ${option} name ${JSON.stringify(value)} is not allowed: use 1 to ${maxLength} letters, digits or underscores.`,
    );
  }
}
