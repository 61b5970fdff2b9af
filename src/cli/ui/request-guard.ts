/**
 * Who may talk to the dashboard. Every request needs a Host header naming the dashboard itself,
 * which stops a page on another site from reading it through DNS rebinding. Reading the store's
 * data (`/api/...`) needs the operator token too, on every address, loopback included: records
 * hold stored response bodies, and 127.0.0.1 is shared by more than the operator (other users of
 * the machine, sidecar containers of a pod, SSH port forwards). The page itself (HTML, script,
 * style) holds no data and stays open, so that it can ask for the token.
 *
 * Acting (releasing a key) needs more, because a browser will send a cross-site POST on the
 * operator's behalf:
 *
 * 1. the operator token, as `Authorization: Bearer <token>` (a page on another site cannot know it);
 * 2. `Content-Type: application/json`, which a cross-site form cannot send, and which makes a
 *    cross-site `fetch` ask first (CORS preflight) — and the dashboard answers no preflight;
 * 3. an `Origin`, when the browser sends one, equal to the dashboard's own.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/** A refusal: the status and what to tell the caller. */
export interface Refusal {
  status: number;
  code: string;
  message: string;
}

export class RequestGuard {
  readonly #tokenDigest: Buffer;
  readonly #hosts: Set<string>;
  readonly #anyHost: boolean;

  /**
   * @param token the operator token actions need.
   * @param host the address the dashboard listens on; `port` its port.
   */
  constructor(token: string, host: string, port: number) {
    this.#tokenDigest = digest(token);
    const hostPort = (name: string) => `${isIP(name) === 6 ? `[${name}]` : name}:${port}`.toLowerCase();
    this.#hosts = new Set([hostPort(host)]);
    // On a loopback address the browser may name it either way.
    if (isLoopback(host)) for (const name of ['localhost', '127.0.0.1', '::1']) this.#hosts.add(hostPort(name));
    // Bound to every interface, the dashboard cannot know the names it is reached by.
    this.#anyHost = host === '0.0.0.0' || host === '::';
  }

  /** Refuses a request whose Host is not the dashboard's own. */
  checkHost(req: IncomingMessage): Refusal | undefined {
    const host = (req.headers.host ?? '').toLowerCase();
    if (this.#anyHost || this.#hosts.has(host)) return undefined;
    return {
      status: 421,
      code: 'WRONG_HOST',
      message: `Host ${JSON.stringify(host)} is not this dashboard's address (${[...this.#hosts].join(', ')}); open it by that address.`,
    };
  }

  /**
   * Refuses a request without the operator token as `Authorization: Bearer <token>`, or with
   * another one. Both sides are hashed first, so the comparison takes the same time whatever
   * length was sent.
   *
   * @param what what the request does, for the message: `reading` or `actions`.
   */
  checkToken(req: IncomingMessage, what: 'reading' | 'actions' = 'reading'): Refusal | undefined {
    const given = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '')?.[1];
    if (given === undefined) {
      const need = what === 'reading' ? 'reading the dashboard needs' : 'actions need';
      return {
        status: 401,
        code: 'TOKEN_MISSING',
        message: `${need} the operator token idem ui printed at start-up (or its --token, IDEM_UI_TOKEN): open the URL it printed, which carries it after #token=, or send Authorization: Bearer <token>.`,
      };
    }
    if (!timingSafeEqual(digest(given), this.#tokenDigest)) {
      return {
        status: 401,
        code: 'TOKEN_WRONG',
        message:
          'the operator token is not the one idem ui was started with: use the one it printed at start-up, or its --token (IDEM_UI_TOKEN).',
      };
    }
    return undefined;
  }

  /** Refuses an action that is cross-site, not JSON, or without the right token. */
  checkAction(req: IncomingMessage): Refusal | undefined {
    const origin = req.headers.origin;
    if (origin !== undefined && !this.#sameOrigin(origin, req.headers.host)) {
      return {
        status: 403,
        code: 'CROSS_SITE',
        message: `a request from ${JSON.stringify(origin)} may not act on this dashboard; use the dashboard's own page.`,
      };
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') {
      return { status: 415, code: 'NOT_JSON', message: 'send the action as Content-Type: application/json.' };
    }
    return this.checkToken(req, 'actions');
  }

  #sameOrigin(origin: string, host: string | undefined): boolean {
    try {
      const url = new URL(origin);
      return url.protocol === 'http:' && url.host.toLowerCase() === (host ?? '').toLowerCase();
    } catch {
      return false;
    }
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
