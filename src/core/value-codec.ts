import { deserialize, serialize } from 'node:v8';

/** Turns a return value into bytes and back. */
export interface ValueSerializer<R> {
  encode(value: R): Uint8Array;
  decode(bytes: Uint8Array): R;
}

const JSON_TAG = 0x4a; // 'J': the rest is UTF-8 JSON
const V8_TAG = 0x56; // 'V': the rest is a node:v8 structured clone
const UNDEFINED_TAG = 0x55; // 'U': the function returned nothing

/**
 * The default serializer: values that JSON carries exactly (plain objects and arrays of strings,
 * finite numbers, booleans and null) are stored as JSON, which is several times faster to write
 * and read; anything else (Dates, Maps, Sets, typed arrays, bigints, `undefined` inside, -0, NaN)
 * as a `node:v8` structured clone, so it comes back as it went in. Class instances come back as
 * plain objects, as with `structuredClone`.
 */
export const defaultSerializer: ValueSerializer<unknown> = {
  encode(value) {
    if (value === undefined) return Uint8Array.of(UNDEFINED_TAG);
    if (jsonExact(value, 0)) {
      const text = JSON.stringify(value);
      const bytes = Buffer.allocUnsafe(Buffer.byteLength(text) + 1);
      bytes[0] = JSON_TAG;
      bytes.write(text, 1);
      return bytes;
    }
    const clone = serialize(value);
    const bytes = Buffer.allocUnsafe(clone.length + 1);
    bytes[0] = V8_TAG;
    clone.copy(bytes, 1);
    return bytes;
  },
  decode(bytes) {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (buffer[0] === JSON_TAG) return JSON.parse(buffer.toString('utf8', 1));
    if (buffer[0] === V8_TAG) return deserialize(buffer.subarray(1));
    if (buffer[0] === UNDEFINED_TAG) return undefined;
    throw new Error(`unknown value tag ${buffer[0]}`);
  },
};

/** True when JSON.parse(JSON.stringify(value)) gives back an equal value. */
function jsonExact(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'object':
      return value === null || (depth <= 100 && jsonExactObject(value, depth));
    default:
      return false;
  }
}

/** An array without holes, or a plain object, whose every item is exact in JSON. */
function jsonExactObject(value: object, depth: number): boolean {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!(i in value) || !jsonExact(value[i], depth + 1)) return false;
    }
    return true;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key in value) {
    if (!jsonExact((value as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}
