import type { EncryptionKeys } from '../core/keyring.js';

/**
 * The encryption keys the command reads from the environment only, to keep them out of `ps`:
 * `IDEM_ENCRYPTION_KEY` seals, and `IDEM_ENCRYPTION_OLD_KEYS` (comma-separated) still open what
 * older keys sealed, so keys can rotate without losing the records in retention.
 */
export function encryptionKeysFromEnv(env: NodeJS.ProcessEnv = process.env): EncryptionKeys | undefined {
  const current = env.IDEM_ENCRYPTION_KEY;
  if (current === undefined || current === '') return undefined;
  const old = (env.IDEM_ENCRYPTION_OLD_KEYS ?? '')
    .split(',')
    .map((key) => key.trim())
    .filter((key) => key !== '');
  return old.length === 0 ? current : [current, ...old];
}
