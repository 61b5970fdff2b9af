import { ErrorCode, IdempotencyError } from '../core/errors.js';
import { MAX_KEY_LENGTH } from '../core/keys.js';

/**
 * Reads the `Idempotency-Key` header. The IETF draft makes it a Structured Field string
 * (`"8e03978e-40d5-43e8-bc93-6894a57f9324"`); a bare value of visible ASCII is accepted too,
 * since many clients send one. Returns `undefined` when the header is absent.
 *
 * Refused with `KEY_INVALID` (400): an empty value, more than one value (a repeated header or a
 * list), over `maxLength` characters, characters outside visible ASCII (and space inside quotes),
 * a broken quoted string, or parameters. Only spaces and tabs around the value are ignored.
 */
export function parseIdempotencyKey(
  header: string | readonly string[] | undefined,
  maxLength = MAX_KEY_LENGTH,
): string | undefined {
  if (header === undefined) return undefined;
  if (Array.isArray(header)) {
    if (header.length === 0) return undefined;
    if (header.length > 1) invalid('the header was sent more than once; send exactly one key');
  }
  // Only HTTP whitespace (space, tab) is trimmed: `trim()` would also strip U+00A0 and make
  // `abc<0xA0>` the same key as `abc`.
  const raw = trimOws(typeof header === 'string' ? header : (header[0] as string));
  if (raw === '') invalid('the header is empty; send a unique key such as a UUID');
  const key = raw.startsWith('"') ? parseQuoted(raw) : parseBare(raw);
  if (key.length === 0) invalid('the key is empty; send a unique key such as a UUID');
  if (key.length > maxLength) invalid(`the key is ${key.length} characters long; the limit is ${maxLength}`);
  return key;
}

function parseQuoted(raw: string): string {
  let key = '';
  for (let i = 1; i < raw.length; i++) {
    const char = raw[i] as string;
    if (char === '"') {
      refuseAfterKey(trimOws(raw.slice(i + 1)));
      return key;
    }
    if (char === '\\') {
      key += escaped(raw[i + 1]);
      i += 1;
      continue;
    }
    const code = raw.charCodeAt(i);
    if (code < 0x20 || code > 0x7e) invalid('the key holds a character outside printable ASCII');
    key += char;
  }
  return invalid('the quoted key has no closing quote');
}

/** The character after a backslash in a quoted key: only `"` and `\` may be escaped. */
function escaped(next: string | undefined): string {
  if (next !== '"' && next !== '\\') invalid('a backslash in a quoted key may only escape " or \\');
  return next;
}

/** Nothing may follow the closing quote: not a second key (a list), not parameters. */
function refuseAfterKey(rest: string): void {
  if (rest.startsWith(',')) invalid('the header holds a list; send exactly one key');
  if (rest !== '') invalid('parameters after the key are not allowed');
}

function parseBare(raw: string): string {
  for (let i = 0; i < raw.length; i++) {
    const code = raw.charCodeAt(i);
    if (code === 0x2c) invalid('the header holds a list; send exactly one key');
    if (code === 0x3b) invalid('parameters after the key are not allowed');
    if (code <= 0x20 || code > 0x7e || code === 0x22 || code === 0x5c) {
      invalid(
        'the key holds a space, quote, backslash or a character outside printable ASCII; quote it as a string ("...") or use a UUID',
      );
    }
  }
  return raw;
}

function invalid(why: string): never {
  throw new IdempotencyError(ErrorCode.KEY_INVALID, `[idem] invalid Idempotency-Key: ${why}.`);
}

/**
 * Trims HTTP optional whitespace (space and tab) only. `String.prototype.trim` also strips
 * U+00A0 and other Unicode spaces, which would make `abc\u00a0` equal `abc`.
 */
export function trimOws(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && (text.charCodeAt(start) === 0x20 || text.charCodeAt(start) === 0x09)) start++;
  while (end > start && (text.charCodeAt(end - 1) === 0x20 || text.charCodeAt(end - 1) === 0x09)) end--;
  return text.slice(start, end);
}
