import { once } from 'node:events';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetchListener } from './fetch-listener.js';

/** A Web `fetch` handler: Hono's `app`, or any object with `fetch(request)`. */
export interface FetchHandlerLike {
  fetch(request: Request, ...rest: never[]): Response | Promise<Response>;
}

/** A Koa app: its `callback()` is a node:http listener. */
export interface KoaLike {
  callback(): RequestListener;
}

/** A Fastify instance: `ready()` loads its plugins, `routing` is its node:http handler. */
export interface FastifyLike {
  ready(): PromiseLike<unknown>;
  routing(req: IncomingMessage, res: ServerResponse): void;
}

/**
 * What a check or a retrying client can talk to: a URL of a running server (`http://127.0.0.1:3000`),
 * or an app served in-process on an ephemeral 127.0.0.1 port: a node:http request listener or an
 * Express app (both are `(req, res) => void`), a Koa app, a Fastify instance, or a fetch handler
 * (Hono). A node:http `Server` that is not listening yet is started on an ephemeral port.
 */
export type CheckTarget = string | URL | RequestListener | KoaLike | FastifyLike | FetchHandlerLike | Server;

/** The kind of target, as detected. */
export type TargetKind = 'url' | 'node-server' | 'node-listener' | 'express' | 'koa' | 'fastify' | 'fetch';

/** A target that answers at `url` until `close()`. */
export interface ServedTarget {
  kind: TargetKind;
  /** The base URL: the given one, or `http://127.0.0.1:<port>` of the in-process server. */
  url: URL;
  /** Stops the in-process server (connections included); nothing for a URL target or a server already listening. */
  close(): Promise<void>;
}

/** Serves `target` (see `CheckTarget`); `what` names the caller in errors, e.g. `checkIdempotency`. */
export async function serveTarget(target: unknown, what: string): Promise<ServedTarget> {
  if (typeof target === 'string' || target instanceof URL)
    return { kind: 'url', url: urlOf(target, what), close: noop };
  if (isServer(target)) return serveServer(target);
  if (typeof target === 'function') {
    const kind = 'handle' in target && 'listen' in target ? 'express' : 'node-listener';
    return listen(kind, createServer(target as RequestListener), true);
  }
  const served = typeof target === 'object' && target !== null ? await serveApp(target) : undefined;
  if (served !== undefined) return served;
  throw new TypeError(
    `[idem] ${what}: cannot serve a target of type ${describeType(target)}. Pass a URL string, a node:http ` +
      'request listener or Server, an Express app, a Koa app, a Fastify instance, or a fetch handler (a Hono app).',
  );
}

/** A Fastify, Koa or fetch-handler app, served; `undefined` for an object that is none of them. */
async function serveApp(target: object): Promise<ServedTarget | undefined> {
  {
    const app = target as Partial<FastifyLike & KoaLike & FetchHandlerLike>;
    if (typeof app.routing === 'function' && typeof app.ready === 'function') {
      await app.ready();
      const routing = app.routing.bind(target);
      return listen(
        'fastify',
        createServer((req, res) => routing(req, res)),
        true,
      );
    }
    if (typeof app.callback === 'function') return listen('koa', createServer(app.callback.call(target)), true);
    if (typeof app.fetch === 'function') {
      const handler = app.fetch.bind(target) as (request: Request) => Response | Promise<Response>;
      return listen('fetch', createServer(fetchListener(handler)), true);
    }
  }
  return undefined;
}

function urlOf(text: string | URL, what: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`[idem] ${what}: ${JSON.stringify(String(text))} is not a URL; write http://host:port.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`[idem] ${what}: ${JSON.stringify(url.href)} must be an http:// or https:// URL.`);
  }
  return url;
}

function isServer(target: unknown): target is Server {
  return (
    typeof target === 'object' &&
    target !== null &&
    typeof (target as Server).listen === 'function' &&
    typeof (target as Server).address === 'function' &&
    typeof (target as Server).closeAllConnections === 'function'
  );
}

async function serveServer(server: Server): Promise<ServedTarget> {
  const address = server.address();
  if (address !== null && typeof address === 'object') {
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const loopback = host === '::' || host === '[::]' || host === '0.0.0.0' ? '127.0.0.1' : host;
    return { kind: 'node-server', url: new URL(`http://${loopback}:${address.port}`), close: noop };
  }
  return listen('node-server', server, true);
}

async function listen(kind: TargetKind, server: Server, owned: boolean): Promise<ServedTarget> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    kind,
    url: new URL(`http://127.0.0.1:${port}`),
    async close() {
      if (!owned) return;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function describeType(target: unknown): string {
  if (target === null) return 'null';
  if (Array.isArray(target)) return 'array';
  if (typeof target === 'object')
    return `object (${target.constructor?.name ?? 'Object'}) with no callback, fetch or routing`;
  return typeof target;
}

async function noop(): Promise<void> {}
