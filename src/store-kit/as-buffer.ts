/**
 * A Buffer over the same bytes, without copying: the drivers send a Buffer as binary (`pg`
 * without hex, `mysql2` as `X'..'`, ioredis as a bulk string), and some would not a bare Uint8Array.
 */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
