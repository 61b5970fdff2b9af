import type { IncomingMessage } from 'node:http';
import { requestInvalid } from './gateway-problems.js';

/** Most rounds of percent-decoding looked through: an upstream that decodes twice is covered. */
const DECODE_ROUNDS = 4;
/** The escapes that can turn into a dot-segment or a separator: `.`, `/`, `\` and `%` itself. */
const SIGNIFICANT_ESCAPE = /%(2e|2f|5c|25)/gi;
const ESCAPED: Record<string, string> = { '2e': '.', '2f': '/', '5c': '\\', '25': '%' };

/**
 * The path the upstream is sent for a request target: the base path, then the target as the
 * client wrote it (path and query, not re-encoded). The base path is a boundary: a target that
 * could climb out of it once the upstream, or a proxy behind it, normalises the path is refused
 * with `REQUEST_INVALID`: a dot-segment (`.` or `..`, also as `..;param`), written raw or
 * percent-encoded in any case (`%2e%2e`, `.%2E`, `%252e%252e`), between slashes or backslashes,
 * raw or encoded (`%2f`, `%5c`). Refused even without a base path: `/a/../b` and `/b` would be one
 * resource under two keys. Only origin-form targets (`/path?query`) are forwarded.
 *
 * @example
 * ```ts
 * forwardPath('/charges?limit=3', '/api'); // '/api/charges?limit=3'
 * forwardPath('/%2e%2e/admin', '/api');    // throws REQUEST_INVALID
 * ```
 */
export function forwardPath(target: string, basePath: string): string {
  if (!target.startsWith('/')) {
    throw requestInvalid(
      `the gateway forwards origin-form request targets only (a path such as /charges), not ${JSON.stringify(target.slice(0, 100))}.`,
    );
  }
  const query = target.indexOf('?');
  const path = query < 0 ? target : target.slice(0, query);
  // Without a dot or a percent sign nothing can be, or decode to, a dot-segment: the common case
  // skips the splitting below.
  if (!path.includes('.') && !path.includes('%')) return `${basePath}${target}`;
  for (const segment of path.split('/')) {
    if (climbs(segment)) {
      throw requestInvalid(
        `the path ${JSON.stringify(path.slice(0, 200))} holds a dot-segment ("." or "..", raw or percent-encoded); send the path in its normal form, without dot-segments.`,
      );
    }
  }
  return `${basePath}${target}`;
}

/** True when one raw path segment is, or hides, a dot-segment. */
function climbs(segment: string): boolean {
  let text = segment;
  for (let round = 0; round <= DECODE_ROUNDS; round++) {
    for (const part of text.split(/[/\\]/)) {
      const name = part.split(';')[0];
      if (name === '.' || name === '..') return true;
    }
    const decoded = text.replace(SIGNIFICANT_ESCAPE, (_, hex: string) => ESCAPED[hex.toLowerCase()] as string);
    if (decoded === text) return false;
    text = decoded;
  }
  return false;
}

/**
 * Refuses a request whose body framing the gateway does not forward as it is: a
 * `Transfer-Encoding` other than `chunked` alone (Node's parser has de-chunked the body, but a
 * coding such as gzip would go to the upstream unnamed). `Transfer-Encoding` with
 * `Content-Length` never gets here: Node's parser refuses it with 400.
 */
export function checkFraming(req: IncomingMessage): void {
  const coding = req.headers['transfer-encoding'];
  if (coding !== undefined && coding.trim().toLowerCase() !== 'chunked') {
    throw requestInvalid(
      `Transfer-Encoding ${JSON.stringify(coding)} is not forwarded; send the body with Content-Length or Transfer-Encoding: chunked.`,
    );
  }
}
