import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import { ErrorCode, IdempotencyError } from './errors.js';

/**
 * Canonical text of a value, for fingerprints: the same value always gives the same text, and
 * two values that differ give different texts.
 *
 * - Plain objects: keys sorted by Unicode code point (not by locale, not by UTF-16 unit);
 *   properties whose value is `undefined` are left out, as JSON does.
 * - Numbers in JavaScript's shortest round-trip form (`1e21`, `0.1`); `-0` is `0`;
 *   `NaN` and the infinities are refused, since JSON cannot carry them and guessing would collide.
 * - Dates, typed arrays, Buffers, ArrayBuffers and bigints get a tagged form that no JSON text
 *   can produce, so `new Date(0)` and the string `"1970-01-01T00:00:00.000Z"` differ.
 * - Anything else (functions, symbols, Maps, Sets, class instances, cycles, nesting deeper than
 *   `MAX_DEPTH`) is refused with `FINGERPRINT_UNSUPPORTED`, naming the path, rather than guessed at.
 *
 * The output is only ever hashed, never parsed back.
 */
export function canonicalize(value: unknown): string {
  const walk: Walk = { text: '', seen: new Set(), path: [] };
  write(value, walk);
  return walk.text;
}

/**
 * The state of one `canonicalize`: the text so far, the containers being written (for cycles) and
 * the path to the current value as a stack of keys and indexes. The path is turned into text
 * (`$.a[0]`) only when a value is refused: building it for every value cost more than the rest.
 */
interface Walk {
  text: string;
  seen: Set<object>;
  path: (string | number)[];
}

/** SHA-256 of the canonical text, base64url (43 characters). */
export function fingerprintOf(value: unknown): string {
  return hashText(canonicalize(value));
}

/** SHA-256 of a string or bytes, base64url. */
export function hashText(text: string | Uint8Array): string {
  // The one-shot crypto.hash (Node 20.12+) is about twice as fast as a Hash object for short input.
  return oneShot === undefined
    ? createHash('sha256').update(text).digest('base64url')
    : oneShot('sha256', text, 'base64url');
}

const oneShot = (crypto as { hash?: (algorithm: string, data: string | Uint8Array, encoding: 'base64url') => string })
  .hash;

/** Deepest nesting of arrays and objects accepted; a few KB of `[[[[...]]]]` must not exhaust the stack. */
export const MAX_DEPTH = 1000;

function write(value: unknown, walk: Walk): void {
  if (typeof value === 'object' && value !== null) {
    if (!writeLeafObject(value, walk)) writeContainer(value, walk);
    return;
  }
  writeScalar(value, walk);
}

/** Strings, numbers, booleans, bigints, `undefined` and `null`; anything else is refused. */
function writeScalar(value: unknown, walk: Walk): void {
  switch (typeof value) {
    case 'string':
      walk.text += JSON.stringify(value);
      return;
    case 'number':
      if (!Number.isFinite(value)) refuse(walk, `the number ${value}`);
      walk.text += Object.is(value, -0) ? '0' : String(value);
      return;
    case 'boolean':
      walk.text += value ? 'true' : 'false';
      return;
    case 'bigint':
      walk.text += `bigint:${value.toString()}`;
      return;
    case 'undefined':
      // Only reached for array items and the top level; JSON writes null there too.
      walk.text += 'null';
      return;
    case 'object':
      walk.text += 'null';
      return;
    default:
      refuse(walk, `a ${typeof value}`);
  }
}

/** Objects written as one tagged value (Dates, bytes); false for arrays and plain objects. */
function writeLeafObject(value: object, walk: Walk): boolean {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) refuse(walk, 'an invalid Date');
    walk.text += `date:${value.toISOString()}`;
    return true;
  }
  if (ArrayBuffer.isView(value)) {
    const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    walk.text += `bytes:${Buffer.from(bytes).toString('base64')}`;
    return true;
  }
  if (value instanceof ArrayBuffer) {
    walk.text += `bytes:${Buffer.from(value).toString('base64')}`;
    return true;
  }
  return false;
}

/** Arrays and plain objects, keys sorted by code point; cycles, deep nesting and class instances refused. */
function writeContainer(value: object, walk: Walk): void {
  if (walk.seen.has(value)) refuse(walk, 'a circular reference');
  if (walk.path.length >= MAX_DEPTH) refuse(walk, `nesting deeper than ${MAX_DEPTH} levels`);
  walk.seen.add(value);
  if (Array.isArray(value)) writeArray(value, walk);
  else writeRecord(value, walk);
  walk.seen.delete(value);
}

function writeArray(value: unknown[], walk: Walk): void {
  walk.text += '[';
  for (let i = 0; i < value.length; i++) {
    if (i > 0) walk.text += ',';
    walk.path.push(i);
    write(value[i], walk);
    walk.path.pop();
  }
  walk.text += ']';
}

function writeRecord(value: object, walk: Walk): void {
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    const name = (value as { constructor?: { name?: string } }).constructor?.name ?? 'unknown';
    refuse(walk, `an instance of ${name}`);
  }
  const record = value as Record<string, unknown>;
  const keys = definedKeys(record);
  walk.text += '{';
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (i > 0) walk.text += ',';
    walk.text += `${JSON.stringify(key)}:`;
    walk.path.push(key);
    write(record[key], walk);
    walk.path.pop();
  }
  walk.text += '}';
}

/** The keys of `record` whose value is not `undefined`, sorted by code point. */
function definedKeys(record: Record<string, unknown>): string[] {
  const keys: string[] = [];
  for (const key of Object.keys(record)) {
    if (record[key] !== undefined) keys.push(key);
  }
  return keys.sort(compareCodePoints);
}

/**
 * Orders strings by Unicode code point. `<` on strings compares UTF-16 units, which puts
 * U+E000..U+FFFF after characters past U+FFFF (stored as surrogates); this corrects that case.
 */
export function compareCodePoints(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    const aSurrogate = ca >= 0xd800 && ca <= 0xdfff;
    const bSurrogate = cb >= 0xd800 && cb <= 0xdfff;
    if (aSurrogate && !bSurrogate && cb >= 0xe000) return 1;
    if (bSurrogate && !aSurrogate && ca >= 0xe000) return -1;
    return ca - cb;
  }
  return a.length - b.length;
}

/** The path to the current value, as the refusals name it: `$`, then `.key` or `[index]` per level. */
function pathText(path: readonly (string | number)[]): string {
  let text = '$';
  for (const step of path) text += typeof step === 'number' ? `[${step}]` : `.${step}`;
  return text;
}

function refuse(walk: Walk, what: string): never {
  throw new IdempotencyError(
    ErrorCode.FINGERPRINT_UNSUPPORTED,
    `[idem] cannot fingerprint ${what} at ${pathText(walk.path)}: use plain objects, arrays, strings, finite numbers, booleans, null, Dates, bigints or bytes, or pass a \`fingerprint\` function that returns such a value.`,
  );
}
