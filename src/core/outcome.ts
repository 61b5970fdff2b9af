import { type EncryptionKeys, Keyring, SEAL_OVERHEAD_BYTES, unreadable } from './keyring.js';

/**
 * What the engine stores in `record.result`: one byte of format, then either the plain outcome
 * (one byte of kind, then the payload) or, with an encryption key, the outcome (kind, payload)
 * sealed with AES-256-GCM: key id (4 bytes), IV (12), tag (16), ciphertext. The format byte, the
 * key id and the record's store key are the seal's associated data, so sealed bytes moved into
 * another record do not open.
 */
export const OutcomeKind = {
  /** The work succeeded; the payload is its encoded result. */
  value: 0,
  /** The work failed with an error chosen to be stored; the payload is the encoded error. */
  error: 1,
  /** The work succeeded but its result was over the size limit; the payload is the size as text. */
  tooLarge: 2,
  /**
   * The work may have acted, but its result could not be kept (an HTTP response that broke off
   * mid-body); the payload is the reason as UTF-8 text.
   */
  notStored: 3,
} as const;
export type OutcomeKind = (typeof OutcomeKind)[keyof typeof OutcomeKind];

export interface Outcome {
  kind: OutcomeKind;
  payload: Uint8Array;
}

const PLAIN = 1;
/** Sealed before sealed results were bound to their record: no longer opened. */
const SEALED_UNBOUND = 2;
const SEALED = 3;

/** True when `bytes` (a stored result) is sealed: it opens only with the encryption key. */
export function isSealed(bytes: Uint8Array): boolean {
  return bytes[0] === SEALED || bytes[0] === SEALED_UNBOUND;
}

/**
 * Encodes and decodes outcomes, sealing them when encryption keys are set. Every call names the
 * record the bytes belong to (its store key): a sealed outcome opens only in that record.
 */
export class OutcomeCodec {
  readonly #keyring: Keyring | undefined;

  /**
   * @param encryptionKey one key (32 bytes, or a secret string that HKDF-SHA-256 turns into 32
   *   bytes), or a list whose first key seals and whose every key opens (see `EncryptionKeys`).
   *   Default: results are stored in the clear.
   */
  constructor(encryptionKey?: EncryptionKeys) {
    this.#keyring = encryptionKey === undefined ? undefined : new Keyring(encryptionKey);
  }

  /** The bytes to store for `outcome` in the record whose store key is `recordKey`. */
  encode(outcome: Outcome, recordKey: string): Uint8Array {
    const plain = Buffer.allocUnsafe(outcome.payload.length + 2);
    plain[0] = PLAIN;
    plain[1] = outcome.kind;
    plain.set(outcome.payload, 2);
    if (this.#keyring === undefined) return plain;
    return this.#keyring.seal(SEALED_HEADER, plain.subarray(1), recordKey);
  }

  /**
   * The outcome stored as `bytes` in the record whose store key is `recordKey`. Throws
   * `RESULT_UNREADABLE` when the bytes cannot be read: sealed without a key configured, with a key
   * not configured, for another record, altered, cut short, in the clear while keys are configured
   * (not trusted: anyone who can write to the store could have put it there), or in an unknown format.
   */
  decode(bytes: Uint8Array, recordKey: string): Outcome {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (buffer[0] === PLAIN && buffer.length >= 2) {
      // With keys configured, every result Idem writes is sealed: a plain one was written by
      // someone else (or before encryption was turned on) and is not trusted, or anyone who can
      // write to the store could plant a result for any record.
      if (this.#keyring !== undefined) {
        throw unreadable(
          'it is stored in the clear while an encryptionKey is configured (written before encryption was turned on, or by someone else)',
        );
      }
      return { kind: toKind(buffer[1]), payload: buffer.subarray(2) };
    }
    if (buffer[0] === SEALED && buffer.length > SEALED_HEADER.length + SEAL_OVERHEAD_BYTES) {
      if (this.#keyring === undefined) throw unreadable('it is encrypted and no encryptionKey is configured');
      const plain = this.#keyring.open(buffer, SEALED_HEADER.length, recordKey);
      return { kind: toKind(plain[0]), payload: plain.subarray(1) };
    }
    if (buffer[0] === SEALED) throw unreadable('it is sealed but cut short');
    if (buffer[0] === SEALED_UNBOUND) {
      throw unreadable('it was sealed by an earlier version of Idem, whose sealed results this version does not open');
    }
    throw unreadable('its format byte is unknown (written by another program?)');
  }
}

/** The header of a sealed outcome: its format byte, bound into the seal with the record key. */
const SEALED_HEADER = Uint8Array.of(SEALED);

function toKind(byte: number | undefined): OutcomeKind {
  if (byte === 0 || byte === 1 || byte === 2 || byte === 3) return byte;
  throw unreadable(`its kind byte ${byte} is unknown`);
}
