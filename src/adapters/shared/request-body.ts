/**
 * What reading a request body gives, the same for a Node request and a Web `Request`: the bytes,
 * `'too-large'` as soon as the body passes the limit (answer 413 with `requestTooLarge`), or
 * `'aborted'` when the client went away before its body ended (nothing was claimed and no one is
 * left to answer).
 */
export type BodyRead<Bytes extends Uint8Array> = Bytes | 'too-large' | 'aborted';

/**
 * A body read as bytes, the way the fingerprint and a JSON handler expect it: parsed when the
 * content type is JSON and the bytes are valid JSON, else the bytes themselves.
 */
export function parsedBody(contentType: string | null | undefined, bytes: Uint8Array): unknown {
  if (!/\bjson\b/i.test(contentType ?? '')) return bytes;
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    return bytes;
  }
}

/** A Content-Length value as a byte count, or `undefined` when absent or not a whole number. */
export function lengthOf(value: string | null | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  const bytes = Number(value);
  return Number.isSafeInteger(bytes) && bytes >= 0 ? bytes : undefined;
}
