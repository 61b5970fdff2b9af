import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { ErrorCode, IdempotencyError } from './errors.js';

/**
 * One key that seals stored results: 32 bytes, used as they are (AES-256), or a secret string,
 * from which HKDF-SHA-256 derives the 32 bytes. HKDF does not slow down guessing: a string should
 * be long and random (`openssl rand -base64 32`), not a password.
 */
export type EncryptionKey = string | Uint8Array;

/**
 * The `encryptionKey` option: one key, or a list to rotate keys. The first key of a list seals
 * new results; every key in it opens the results it sealed (each sealed result names its key by
 * an id derived from the key). To rotate, put the new key first and keep the old ones after it
 * until the records they sealed have expired (the retention, 24 h by default).
 */
export type EncryptionKeys = EncryptionKey | readonly EncryptionKey[];

/** Bytes of the key id in a sealed result's header. */
export const KEY_ID_BYTES = 4;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** What a sealed blob holds before its ciphertext: key id, IV, tag (after the caller's header). */
export const SEAL_OVERHEAD_BYTES = KEY_ID_BYTES + IV_BYTES + TAG_BYTES;

/** HKDF's fixed `info` label for keys derived from a string; changing it changes every derived key. */
const HKDF_INFO = 'idem/result-encryption/v1';
const KEY_ID_LABEL = 'idem/key-id/v1';

interface SealingKey {
  key: Buffer;
  id: Buffer;
}

/**
 * The keys that seal and open stored results with AES-256-GCM. A sealed blob is the caller's
 * header, then `keyId (4) | iv (12) | tag (16) | ciphertext`; the header, the key id and the
 * record's key are the associated data, so a blob opens only in the record it was sealed for and
 * with the header it was written with: copied into another record, it is refused.
 */
export class Keyring {
  readonly #current: SealingKey;
  readonly #byId: Map<number, SealingKey>;

  constructor(keys: EncryptionKeys) {
    const list: readonly unknown[] = Array.isArray(keys) ? keys : [keys];
    if (list.length === 0) {
      throw invalid('encryptionKey is an empty list: give one key, or the current key first and older ones after it.');
    }
    const sealing = list.map((key, index) => sealingKey(key, list.length === 1 ? undefined : index));
    this.#current = sealing[0] as SealingKey;
    this.#byId = new Map();
    for (const key of sealing) {
      // The first key with an id wins; a second with the same id (a repeated key) adds nothing.
      if (!this.#byId.has(key.id.readUInt32BE(0))) this.#byId.set(key.id.readUInt32BE(0), key);
    }
  }

  /** `header`, then `plain` sealed under the current key, bound to `header` and `recordKey`. */
  seal(header: Uint8Array, plain: Uint8Array, recordKey: string): Buffer {
    const { key, id } = this.#current;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(associatedData(header, id, recordKey));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([header, id, iv, cipher.getAuthTag(), body]);
  }

  /**
   * The plain bytes of `blob`, whose first `headerLength` bytes are the header `seal` was given.
   * Throws `RESULT_UNREADABLE` when its key is not in the ring, or it was sealed for another
   * record, or its bytes were altered.
   */
  open(blob: Buffer, headerLength: number, recordKey: string): Buffer {
    const idAt = headerLength;
    const ivAt = idAt + KEY_ID_BYTES;
    const tagAt = ivAt + IV_BYTES;
    const bodyAt = tagAt + TAG_BYTES;
    const id = blob.subarray(idAt, ivAt);
    const sealing = this.#byId.get(id.readUInt32BE(0));
    if (sealing === undefined) {
      throw unreadable(
        `it was sealed with a key that is not configured (key id ${id.toString('hex')}); add that key to encryptionKey after the current one (the keys configured have ids ${this.keyIds().join(', ')})`,
      );
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', sealing.key, blob.subarray(ivAt, tagAt));
      decipher.setAAD(associatedData(blob.subarray(0, headerLength), id, recordKey));
      decipher.setAuthTag(blob.subarray(tagAt, bodyAt));
      return Buffer.concat([decipher.update(blob.subarray(bodyAt)), decipher.final()]);
    } catch (cause) {
      throw unreadable(
        `it does not open under key id ${id.toString('hex')} for this record: it was sealed for another record (copied from another key) or its bytes were altered`,
        cause,
      );
    }
  }

  /** The ids of the configured keys, as hex, current first. */
  keyIds(): string[] {
    return [...this.#byId.values()].map((key) => key.id.toString('hex'));
  }
}

/** The key id of a key: the first 4 bytes of HMAC-SHA-256(key, label). Names the key, reveals nothing of it. */
function sealingKey(given: unknown, index: number | undefined): SealingKey {
  const where = index === undefined ? 'encryptionKey' : `encryptionKey[${index}]`;
  let key: Buffer;
  if (typeof given === 'string') {
    if (given.length === 0) throw invalid(`${where} is empty: give 32 random bytes or a long random secret string.`);
    key = Buffer.from(hkdfSync('sha256', given, Buffer.alloc(0), HKDF_INFO, 32));
  } else if (given instanceof Uint8Array) {
    if (given.length !== 32) {
      throw invalid(`${where} has ${given.length} bytes; AES-256 needs exactly 32 (or pass a string secret).`);
    }
    key = Buffer.from(given);
  } else {
    throw invalid(`${where} must be a string secret or 32 bytes (a Uint8Array), got ${typeof given}.`);
  }
  const id = createHmac('sha256', key).update(KEY_ID_LABEL).digest().subarray(0, KEY_ID_BYTES);
  return { key, id };
}

function associatedData(header: Uint8Array, id: Uint8Array, recordKey: string): Buffer {
  return Buffer.concat([header, id, Buffer.from(recordKey, 'utf8')]);
}

function invalid(message: string): IdempotencyError {
  return new IdempotencyError(ErrorCode.INVALID_OPTIONS, `[idem] ${message}`);
}

/** `RESULT_UNREADABLE`: the stored result cannot be read, and why. */
export function unreadable(why: string, cause?: unknown): IdempotencyError {
  return new IdempotencyError(
    ErrorCode.RESULT_UNREADABLE,
    `[idem] the stored result cannot be read: ${why}. Check encryptionKey; delete the key with \`idem keys delete\` to let the operation run again.`,
    { cause },
  );
}
