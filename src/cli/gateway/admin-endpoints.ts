import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendResponse } from '../../adapters/shared/node-response.js';
import { callStore } from '../../core/deadlines.js';
import type { Engine } from '../../core/engine.js';
import { problemResponse } from '../../http/problem.js';
import { notFound } from './gateway-problems.js';
import type { GatewayMetrics } from './metrics.js';

/** Paths under this prefix are the gateway's own and never forwarded. */
export const ADMIN_PREFIX = '/__idem/';

/** What the gateway's own endpoints report on. */
export interface AdminContext {
  metrics: GatewayMetrics;
  /** The engine, for the store's name and a health read. */
  engine: Engine;
  /** The upstream as shown: origin and base path. */
  upstream: string;
  /** Requests being handled now. */
  inFlight(): number;
  /** True once shutdown began. */
  closing(): boolean;
}

/**
 * Answers `GET /__idem/health` (JSON; 503 while shutting down or when the store does not answer)
 * and `GET /__idem/metrics` (Prometheus text); anything else under the prefix is 404.
 */
export async function answerAdmin(context: AdminContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  const get = req.method === 'GET' || req.method === 'HEAD';
  if (get && path === `${ADMIN_PREFIX}metrics`) {
    const text = context.metrics.render({ inFlight: context.inFlight(), shuttingDown: context.closing() });
    sendResponse(res, {
      status: 200,
      headers: [['content-type', 'text/plain; version=0.0.4; charset=utf-8']],
      body: Buffer.from(text),
    });
    return;
  }
  if (get && path === `${ADMIN_PREFIX}health`) {
    const { status, report } = await health(context);
    sendResponse(res, {
      status,
      headers: [['content-type', 'application/json']],
      body: Buffer.from(JSON.stringify(report)),
    });
    return;
  }
  sendResponse(
    res,
    problemResponse(
      notFound(
        `${req.method} ${path} is not an endpoint of the gateway; try GET ${ADMIN_PREFIX}health or GET ${ADMIN_PREFIX}metrics.`,
      ),
    ),
  );
}

async function health(context: AdminContext): Promise<{ status: number; report: Record<string, unknown> }> {
  const { engine } = context;
  const report: Record<string, unknown> = {
    status: 'ok',
    store: engine.store.name,
    upstream: context.upstream,
    inFlight: context.inFlight(),
  };
  if (context.closing()) return { status: 503, report: { ...report, status: 'shutting_down' } };
  try {
    await callStore(engine.store.name, 'health check', engine.storeTimeoutMs, () =>
      engine.store.get('idem-health', engine.now()),
    );
    return { status: 200, report };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { status: 503, report: { ...report, status: 'store_unavailable', error: reason } };
  }
}
