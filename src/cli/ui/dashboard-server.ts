/**
 * `idem ui`'s HTTP server: one page, and the JSON it reads. Every answer is JSON or the page
 * itself; a bad request is a 4xx with `{ error: { code, message } }`, never a 500. The page is
 * open; the JSON needs the operator token (see `RequestGuard`).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode, isIdempotencyError } from '../../core/errors.js';
import type { AdminStore, RecordState } from '../../core/store.js';
import { reasonOf } from '../cli-error.js';
import { listRecords } from '../keys/list-records.js';
import { recordJson } from '../keys/record-view.js';
import { JournalPanels } from './journal-panels.js';
import { keyStats, stateOf } from './key-stats.js';
import type { MetricsSampler } from './metrics-sampler.js';
import { releaseKey } from './release-key.js';
import { RequestGuard } from './request-guard.js';
import { PAGE_CSS, PAGE_HTML, PAGE_JS } from './ui-page.js';

export interface DashboardOptions {
  /** The store shown; the dashboard does not close it. */
  store: AdminStore;
  /** How the store is named on the page (the URL without its password). */
  storeLabel: string;
  /** Address to listen on. Default 127.0.0.1. */
  host?: string;
  /** Port; 0 picks a free one. Default 0. */
  port?: number;
  /** The operator token reads and actions need. Default: a random one (see `Dashboard.token`). */
  token?: string;
  /** Samples of `idem serve`'s counters, when `--metrics` is given. */
  metrics?: MetricsSampler;
}

/** A dashboard listening. */
export interface Dashboard {
  /** The dashboard's address, without the token. */
  url: string;
  /**
   * `url` with the token in its fragment (`#token=...`): the page reads it from there, and a
   * browser never sends a fragment to the server, so it stays out of request lines and logs.
   */
  pageUrl: string;
  token: string;
  close(): Promise<void>;
}

/** Largest action body read, in bytes. */
const MAX_BODY = 16 * 1024;
const STATES = ['in_progress', 'completed'] as const;

/** A 4xx answer raised from deep in a handler. */
class BadRequest extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Starts the dashboard.
 *
 * @example
 * ```ts
 * const dashboard = await startDashboard({ store, storeLabel: 'sqlite:./idem.db' });
 * console.log(dashboard.url, dashboard.token);
 * ```
 */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token ?? randomBytes(18).toString('base64url');
  const panels = new JournalPanels(options.store);
  let guard: RequestGuard | undefined;
  const server: Server = createServer((req, res) => {
    void answer({ ...options, panels, guard: guard as RequestGuard }, req, res).catch((error) => {
      if (!res.headersSent) sendJson(res, 500, errorBody('BUG', `unexpected error: ${reasonOf(error)}`));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  guard = new RequestGuard(token, host, port);
  options.metrics?.start();
  const shown = host.includes(':') ? `[${host}]` : host;
  const url = `http://${shown}:${port}/`;
  return {
    url,
    pageUrl: `${url}#token=${encodeURIComponent(token)}`,
    token,
    close: async () => {
      options.metrics?.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface Context extends DashboardOptions {
  panels: JournalPanels;
  guard: RequestGuard;
}

type Handler = (context: Context, url: URL, req: IncomingMessage) => Promise<[number, unknown]>;

const GETS: Record<string, Handler> = {
  '/api/overview': overview,
  '/api/keys': keysPage,
  '/api/record': recordOf,
  '/api/workflows': workflowsPage,
  '/api/notifications': notificationsPage,
};
const POSTS: Record<string, Handler> = { '/api/release': release };
const ASSETS: Record<string, [string, string]> = {
  '/': ['text/html; charset=utf-8', PAGE_HTML],
  '/app.js': ['text/javascript; charset=utf-8', PAGE_JS],
  '/app.css': ['text/css; charset=utf-8', PAGE_CSS],
};

async function answer(context: Context, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const refusedHost = context.guard.checkHost(req);
  if (refusedHost !== undefined) {
    sendJson(res, refusedHost.status, errorBody(refusedHost.code, refusedHost.message));
    return;
  }
  const url = new URL(req.url ?? '/', 'http://dashboard');
  const method = req.method ?? 'GET';
  const asset = ASSETS[url.pathname];
  if (asset !== undefined && (method === 'GET' || method === 'HEAD')) {
    send(res, 200, asset[0], asset[1]);
    return;
  }
  const handler = method === 'POST' ? POSTS[url.pathname] : method === 'GET' ? GETS[url.pathname] : undefined;
  if (handler === undefined) {
    sendJson(res, ...notRouted(method, url.pathname));
    return;
  }
  // Actions check the token themselves, after what a cross-site request cannot pass.
  const refused = method === 'GET' ? context.guard.checkToken(req) : undefined;
  if (refused !== undefined) {
    sendJson(res, refused.status, errorBody(refused.code, refused.message), [['www-authenticate', 'Bearer']]);
    return;
  }
  try {
    sendJson(res, ...(await handler(context, url, req)));
  } catch (error) {
    sendJson(res, ...failure(error, context.storeLabel));
  }
}

/** 405 with what the path takes, or 404 with what there is. */
function notRouted(method: string, path: string): [number, unknown, [string, string][]?] {
  const allowed = [...(GETS[path] || ASSETS[path] ? ['GET'] : []), ...(POSTS[path] ? ['POST'] : [])];
  if (allowed.length > 0) {
    return [
      405,
      errorBody('METHOD_NOT_ALLOWED', `${method} ${path} is not allowed; use ${allowed.join(' or ')}.`),
      [['allow', allowed.join(', ')]],
    ];
  }
  const paths = [...Object.keys(GETS).map((p) => `GET ${p}`), ...Object.keys(POSTS).map((p) => `POST ${p}`)];
  return [
    404,
    errorBody('NOT_FOUND', `${method} ${path} is not an endpoint of the dashboard; there are ${paths.join(', ')}.`),
  ];
}

/** A handler's error as an answer: a bad request, a refusal of the store, or the store failing. */
function failure(error: unknown, storeLabel: string): [number, unknown] {
  if (error instanceof BadRequest) return [error.status, errorBody(error.code, error.message)];
  if (isIdempotencyError(error, ErrorCode.INVALID_OPTIONS) || isIdempotencyError(error, ErrorCode.KEY_INVALID)) {
    return [400, errorBody('BAD_REQUEST', `${reasonOf(error)}.`)];
  }
  return [503, errorBody('STORE_FAILED', `the store ${storeLabel} failed: ${reasonOf(error)}.`)];
}

async function overview(context: Context): Promise<[number, unknown]> {
  const nowMs = Date.now();
  return [
    200,
    {
      store: { name: context.store.name, label: context.storeLabel },
      stats: await keyStats(context.store, nowMs),
      journals: context.panels.available,
      metrics: context.metrics?.report() ?? { enabled: false, samples: [] },
    },
  ];
}

async function keysPage(context: Context, url: URL): Promise<[number, unknown]> {
  const state = oneOf(url, 'state', STATES);
  const page = await listRecords(context.store, {
    limit: limitOf(url, 50),
    ...(state === undefined ? {} : { state: state as RecordState }),
    ...cursorOf(url),
  });
  const nowMs = Date.now();
  const records = page.records.map((record) => ({
    ...recordJson(record),
    shownState: stateOf(record, nowMs),
    takeovers: record.attempts - 1,
  }));
  return [200, { records, nextCursor: page.nextCursor }];
}

async function recordOf(context: Context, url: URL): Promise<[number, unknown]> {
  const key = keyOf(url.searchParams.get('key'));
  const record = await context.store.get(key);
  if (record === null) throw new BadRequest(404, 'NOT_FOUND', `no record with store key ${key}.`);
  const nowMs = Date.now();
  return [
    200,
    {
      ...recordJson(record, true),
      shownState: stateOf(record, nowMs),
      takeovers: record.attempts - 1,
      leaseLeftMs: record.state === 'in_progress' ? Math.max(0, record.leaseExpiresAtMs - nowMs) : 0,
    },
  ];
}

async function workflowsPage(context: Context, url: URL): Promise<[number, unknown]> {
  if (!context.panels.available) return [200, { available: false, items: [] }];
  return [200, { available: true, ...(await context.panels.runs(limitOf(url, 20), cursorOf(url).cursor)) }];
}

async function notificationsPage(context: Context, url: URL): Promise<[number, unknown]> {
  if (!context.panels.available) return [200, { available: false, items: [] }];
  return [200, { available: true, ...(await context.panels.notifications(limitOf(url, 50), cursorOf(url).cursor)) }];
}

async function release(context: Context, _url: URL, req: IncomingMessage): Promise<[number, unknown]> {
  const refused = context.guard.checkAction(req);
  if (refused !== undefined) throw new BadRequest(refused.status, refused.code, refused.message);
  const body = await jsonBody(req);
  const key = keyOf(typeof body.key === 'string' ? body.key : null);
  if (body.force !== undefined && typeof body.force !== 'boolean') {
    throw new BadRequest(400, 'BAD_REQUEST', '"force" must be true or false.');
  }
  const answer = await releaseKey(context.store, key, body.force === true, Date.now());
  return [answer.status, answer.status === 200 ? answer.body : { error: answer.body }];
}

/** The action's JSON object; anything else is a 400 (or 413 when too large). */
async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY)
      throw new BadRequest(413, 'TOO_LARGE', `the body is over ${MAX_BODY} bytes; send { "key": ..., "force": ... }.`);
    chunks.push(chunk);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BadRequest(400, 'BAD_JSON', 'the body is not JSON; send { "key": "<store key>", "force": false }.');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new BadRequest(400, 'BAD_JSON', 'send a JSON object: { "key": "<store key>", "force": false }.');
  }
  return parsed as Record<string, unknown>;
}

function keyOf(key: string | null): string {
  if (key === null || key === '')
    throw new BadRequest(400, 'KEY_MISSING', 'name the record: give its store key as "key".');
  if (Buffer.byteLength(key) > 255 || key.includes('\u0000')) {
    throw new BadRequest(400, 'KEY_INVALID', 'a store key is 1 to 255 bytes without NUL.');
  }
  return key;
}

function limitOf(url: URL, byDefault: number): number {
  const text = url.searchParams.get('limit');
  if (text === null) return byDefault;
  if (!/^\d{1,4}$/.test(text) || Number(text) < 1 || Number(text) > 1000) {
    throw new BadRequest(400, 'BAD_LIMIT', `limit ${JSON.stringify(text)}: use a whole number from 1 to 1000.`);
  }
  return Number(text);
}

function cursorOf(url: URL): { cursor?: string } {
  const cursor = url.searchParams.get('cursor');
  if (cursor === null || cursor === '') return {};
  // Cursors are opaque, but never long and never hold control characters (a NUL breaks SQL text).
  if (cursor.length > 2048 || [...cursor].some((char) => char < ' ')) {
    throw new BadRequest(400, 'BAD_CURSOR', 'the cursor is not one a page gave: pass its nextCursor.');
  }
  return { cursor };
}

function oneOf(url: URL, name: string, allowed: readonly string[]): string | undefined {
  const value = url.searchParams.get(name);
  if (value === null || value === '') return undefined;
  if (!allowed.includes(value)) {
    throw new BadRequest(400, 'BAD_QUERY', `${name} ${JSON.stringify(value)}: use ${allowed.join(' or ')}.`);
  }
  return value;
}

function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

/** Headers on every answer: no caching, no framing, no sniffing; scripts only from the dashboard. */
const SAFE_HEADERS: [string, string][] = [
  ['cache-control', 'no-store'],
  ['x-content-type-options', 'nosniff'],
  ['x-frame-options', 'DENY'],
  ['referrer-policy', 'no-referrer'],
  [
    'content-security-policy',
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  ],
];

function send(res: ServerResponse, status: number, type: string, body: string, extra: [string, string][] = []): void {
  res.writeHead(status, [...SAFE_HEADERS, ['content-type', type], ...extra].flat());
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown, extra: [string, string][] = []): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body), extra);
}
