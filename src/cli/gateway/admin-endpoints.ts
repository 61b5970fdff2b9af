import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendResponse } from '../../adapters/shared/node-response.js';
import { ErrorCode } from '../../core/errors.js';
import { problemResponse } from '../../http/problem.js';
import { notFound } from './gateway-problems.js';
import type { GatewayMetrics } from './metrics.js';
import type { StoreProbe } from './store-probe.js';

/** Paths under this prefix are the gateway's own and never forwarded. */
export const ADMIN_PREFIX = '/__idem/';

/** What the gateway's own endpoints report on. */
export interface AdminContext {
  metrics: GatewayMetrics;
  /** The store's short name (`redis`, `postgres`...). */
  storeName: string;
  /** Asks the store (cached briefly); its failures are logged by the gateway, never sent. */
  probe: StoreProbe;
  /** Requests being handled now. */
  inFlight(): number;
  /** True once shutdown began. */
  closing(): boolean;
  /** SHA-256 of the token `/__idem/metrics` requires; undefined: metrics are open. */
  metricsTokenDigest: Buffer | undefined;
}

/** The SHA-256 digest `AdminContext.metricsTokenDigest` holds; undefined for no token. */
export function tokenDigest(token: string | undefined): Buffer | undefined {
  return token === undefined ? undefined : createHash('sha256').update(token).digest();
}

/**
 * Answers the gateway's own endpoints; anything else under the prefix is 404.
 * - `GET /__idem/health`, liveness: 200 while the process serves, 503 once shutdown began. It
 *   reports whether the store answers (`storeStatus`) but does not fail on it: restarting a
 *   gateway does not bring a store back.
 * - `GET /__idem/ready`, readiness: 200 when the store answered a probe within 1 s (answers are
 *   reused for 1 s), 503 while it does not or once shutdown began.
 * - `GET /__idem/metrics`: Prometheus text; with a token configured, only for `Authorization: Bearer <token>`.
 * Neither health nor readiness ever carries the driver's error text (addresses, SQL): the
 * gateway logs it when the store stops answering.
 */
export async function answerAdmin(context: AdminContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  const get = req.method === 'GET' || req.method === 'HEAD';
  if (get && path === `${ADMIN_PREFIX}metrics`) return answerMetrics(context, req, res);
  if (get && (path === `${ADMIN_PREFIX}health` || path === `${ADMIN_PREFIX}ready`)) {
    const { status, report } = await health(context, path.endsWith('ready'));
    const headers: [string, string][] = [
      ['content-type', 'application/json'],
      ['cache-control', 'no-store'],
    ];
    if (status === 503) headers.push(['retry-after', '1']);
    sendResponse(res, { status, headers, body: Buffer.from(JSON.stringify(report)) });
    return;
  }
  sendResponse(
    res,
    problemResponse(
      notFound(
        `${req.method} ${path} is not an endpoint of the gateway; try GET ${ADMIN_PREFIX}health, ${ADMIN_PREFIX}ready or ${ADMIN_PREFIX}metrics.`,
      ),
    ),
  );
}

function answerMetrics(context: AdminContext, req: IncomingMessage, res: ServerResponse): void {
  const expected = context.metricsTokenDigest;
  if (expected !== undefined) {
    const given = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '')?.[1];
    // Digests of equal length, so the comparison takes the same time whatever was sent.
    if (given === undefined || !timingSafeEqual(tokenDigest(given) as Buffer, expected)) {
      refuseMetrics(res, given !== undefined);
      return;
    }
  }
  const text = context.metrics.render({ inFlight: context.inFlight(), shuttingDown: context.closing() });
  sendResponse(res, {
    status: 200,
    headers: [['content-type', 'text/plain; version=0.0.4; charset=utf-8']],
    body: Buffer.from(text),
  });
}

/** 401 (RFC 6750): no bearer token, or the wrong one. */
function refuseMetrics(res: ServerResponse, wrongToken: boolean): void {
  const body = {
    type: 'urn:idem:problem:unauthorized',
    title: 'The metrics require a token',
    status: 401,
    detail: wrongToken
      ? 'the bearer token is not the one the gateway was started with (--metrics-token, IDEM_METRICS_TOKEN).'
      : 'send Authorization: Bearer <token>, the token the gateway was started with (--metrics-token, IDEM_METRICS_TOKEN).',
    code: 'UNAUTHORIZED',
  };
  sendResponse(res, {
    status: 401,
    headers: [
      ['content-type', 'application/problem+json'],
      ['www-authenticate', `Bearer realm="idem-metrics"${wrongToken ? ', error="invalid_token"' : ''}`],
    ],
    body: Buffer.from(JSON.stringify(body)),
  });
}

async function health(context: AdminContext, readiness: boolean): Promise<{ status: number; report: object }> {
  // No upstream address: health is open to anyone who can reach the gateway, and the address of
  // an internal service is not theirs to learn (docs/threat-model.md).
  const base = { store: context.storeName, inFlight: context.inFlight() };
  if (context.closing()) return { status: 503, report: { status: 'shutting_down', ...base } };
  const up = await context.probe.check();
  const report = up
    ? { status: readiness ? 'ready' : 'ok', ...base, storeStatus: 'reachable' }
    : {
        status: readiness ? 'store_unavailable' : 'ok',
        ...base,
        storeStatus: 'unreachable',
        code: ErrorCode.STORE_UNAVAILABLE,
        detail: 'the store did not answer the probe in time; the reason is in the gateway log.',
      };
  return { status: readiness && !up ? 503 : 200, report };
}
