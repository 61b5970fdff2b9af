import { randomFillSync } from 'node:crypto';

/** Tokens drawn from one fill of the random pool. */
const BATCH = 128;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
let pool: Buffer | undefined;
let drawn = BATCH;
/** Where a token's text is written before it becomes a string; reused, as tokens are made one at a time. */
const text = Buffer.allocUnsafe(36);

/**
 * A fresh fencing token: a random (version 4) UUID, as `crypto.randomUUID()` gives, but as one flat
 * string. `randomUUID()` joins twenty pieces, so its answer is a tree of about a dozen small
 * strings until something flattens it; a token lives as long as its record, and a memory store
 * holding that tree per record doubled what the collector copied for every new key.
 */
export function newToken(): string {
  if (drawn === BATCH) {
    pool = randomFillSync(pool ?? Buffer.allocUnsafe(16 * BATCH));
    drawn = 0;
  }
  const bytes = pool as Buffer;
  const start = 16 * drawn++;
  let at = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) text[at++] = 0x2d; // '-'
    // Byte 6 carries the version (4), byte 8 the RFC 4122 variant, as in randomUUID().
    let byte = bytes[start + i] as number;
    if (i === 6) byte = (byte & 0x0f) | 0x40;
    else if (i === 8) byte = (byte & 0x3f) | 0x80;
    text[at++] = HEX[byte >> 4] as number;
    text[at++] = HEX[byte & 0x0f] as number;
  }
  return text.toString('latin1', 0, 36);
}
