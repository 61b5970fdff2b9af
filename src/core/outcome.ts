import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { ErrorCode, IdempotencyError } from './errors.js';

/**
 * What the engine stores in `record.result`: one byte of format, then either the plain outcome
 * (one byte of kind, then the payload) or, with an encryption key, the outcome sealed with
 * AES-256-GCM (12-byte IV, 16-byte tag, ciphertext).
 */
export const OutcomeKind = {
  /** The work succeeded; the payload is its encoded result. */
  value: 0,
  /** The work failed with an error chosen to be stored; the payload is the encoded error. */
  error: 1,
  /** The work succeeded but its result was over the size limit; the payload is the size as text. */
  tooLarge: 2,
} as const;
export type OutcomeKind = (typeof OutcomeKind)[keyof typeof OutcomeKind];

export interface Outcome {
  kind: OutcomeKind;
  payload: Uint8Array;
}

const PLAIN = 1;
const SEALED = 2;

/** Encodes and decodes outcomes, sealing them when an encryption key is set. */
export class OutcomeCodec {
  readonly #key: Buffer | undefined;

  /**
   * @param encryptionKey 32 bytes, or any string (hashed with SHA-256 to 32 bytes). Rotate by
   *   letting old records expire: a record sealed with another key reads as `RESULT_UNREADABLE`.
   */
  constructor(encryptionKey?: string | Uint8Array) {
    if (encryptionKey === undefined) this.#key = undefined;
    else if (typeof encryptionKey === 'string') {
      if (encryptionKey.length === 0) {
        throw new IdempotencyError(
          ErrorCode.INVALID_OPTIONS,
          '[idem] encryptionKey is empty: give 32 random bytes or a long secret string.',
        );
      }
      this.#key = createHash('sha256').update(encryptionKey).digest();
    } else if (encryptionKey.length === 32) this.#key = Buffer.from(encryptionKey);
    else {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] encryptionKey has ${encryptionKey.length} bytes; AES-256 needs exactly 32 (or pass a string secret).`,
      );
    }
  }

  encode(outcome: Outcome): Uint8Array {
    const plain = Buffer.allocUnsafe(outcome.payload.length + 2);
    plain[0] = PLAIN;
    plain[1] = outcome.kind;
    plain.set(outcome.payload, 2);
    if (this.#key === undefined) return plain;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const body = Buffer.concat([cipher.update(plain.subarray(1)), cipher.final()]);
    return Buffer.concat([Buffer.from([SEALED]), iv, cipher.getAuthTag(), body]);
  }

  decode(bytes: Uint8Array): Outcome {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (buffer[0] === PLAIN && buffer.length >= 2) {
      return { kind: toKind(buffer[1]), payload: buffer.subarray(2) };
    }
    if (buffer[0] === SEALED && buffer.length >= 29) {
      if (this.#key === undefined) unreadable('it is encrypted and no encryptionKey is configured');
      try {
        const decipher = createDecipheriv('aes-256-gcm', this.#key, buffer.subarray(1, 13));
        decipher.setAuthTag(buffer.subarray(13, 29));
        const plain = Buffer.concat([decipher.update(buffer.subarray(29)), decipher.final()]);
        return { kind: toKind(plain[0]), payload: plain.subarray(1) };
      } catch (cause) {
        unreadable('it was encrypted with another key or has been altered', cause);
      }
    }
    unreadable('its format byte is unknown (written by another program?)');
  }
}

function toKind(byte: number | undefined): OutcomeKind {
  if (byte === 0 || byte === 1 || byte === 2) return byte;
  unreadable(`its kind byte ${byte} is unknown`);
}

function unreadable(why: string, cause?: unknown): never {
  throw new IdempotencyError(
    ErrorCode.RESULT_UNREADABLE,
    `[idem] the stored result cannot be read: ${why}. Check encryptionKey; delete the key with \`idem keys delete\` to let the operation run again.`,
    { cause },
  );
}
