import autocannon from 'autocannon';

/** Connections an autocannon run keeps open when `LoadOptions.connections` is not given. */
export const DEFAULT_CONNECTIONS = 32;

/** What one autocannon run measured. */
export interface LoadResult {
  requestsPerSec: number;
  /** Latency of 2xx responses, in ms, measured per response (autocannon's own histogram has 1 ms steps). */
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /** Responses completed in each second of the run. */
  perSecond: number[];
}

export interface LoadOptions {
  /** Origin, e.g. http://127.0.0.1:3000. */
  url: string;
  path: string;
  /** JSON body of every request. */
  body: string;
  durationS: number;
  /** The Idempotency-Key of the next request; `undefined` sends none. */
  key: () => string | undefined;
  /** Connections kept open at once. Default 32. */
  connections?: number;
}

/** One autocannon run of POST `path`; latency is timed per 2xx response. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const instance = autocannon({
    url: `${options.url}${options.path}`,
    connections: options.connections ?? DEFAULT_CONNECTIONS,
    duration: options.durationS,
    requests: [
      {
        method: 'POST',
        path: options.path,
        body: options.body,
        // Every client sends a credential: Idem scopes keys by caller and refuses keyed requests without one.
        headers: { 'content-type': 'application/json', authorization: 'Bearer bench-client' },
        // Same work on the client in every mode: only the key's value differs.
        setupRequest: (request) => {
          const key = options.key();
          return key === undefined ? request : { ...request, headers: { ...request.headers, 'idempotency-key': key } };
        },
      },
    ],
  });
  const latencies: number[] = [];
  instance.on('response', (_client, status, _bytes, ms) => {
    if (status >= 200 && status < 300) latencies.push(ms);
  });
  const perSecond: number[] = [];
  instance.on('tick', (tick) => perSecond.push((tick as { counter: number }).counter));
  const result = await instance;
  // autocannon ends with one more tick, counted after its counter was reset.
  if (perSecond.at(-1) === 0) perSecond.pop();
  latencies.sort((a, b) => a - b);
  const pick = (q: number) => latencies[Math.min(latencies.length - 1, Math.ceil(latencies.length * q) - 1)] ?? NaN;
  const total = result.requests.total;
  return {
    requestsPerSec: total / result.duration,
    meanMs: latencies.reduce((sum, value) => sum + value, 0) / latencies.length,
    p50Ms: pick(0.5),
    p99Ms: pick(0.99),
    requests: total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count])),
    perSecond,
  };
}
