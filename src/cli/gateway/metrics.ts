import type { HttpEvent } from '../../http/http-idempotency.js';

/** Upper bounds of the latency buckets, in seconds: 0.5 ms to 5 s. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;

/** One Prometheus histogram with fixed buckets; observations in seconds. */
class Histogram {
  readonly #counts = LATENCY_BUCKETS.map(() => 0);
  #sum = 0;
  #count = 0;

  observe(seconds: number): void {
    this.#sum += seconds;
    this.#count += 1;
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
      if (seconds <= (LATENCY_BUCKETS[i] as number)) (this.#counts[i] as number)++;
    }
  }

  render(name: string, labels = ''): string[] {
    const join = labels === '' ? '' : `${labels},`;
    const lines = LATENCY_BUCKETS.map((bound, i) => `${name}_bucket{${join}le="${bound}"} ${this.#counts[i]}`);
    lines.push(`${name}_bucket{${join}le="+Inf"} ${this.#count}`);
    const plain = labels === '' ? '' : `{${labels}}`;
    lines.push(`${name}_sum${plain} ${this.#sum}`, `${name}_count${plain} ${this.#count}`);
    return lines;
  }
}

/** Which counter each decision of the HTTP layer adds to. */
const DECISION_COUNTERS = {
  pass: 'idem_passthrough_total',
  run: 'idem_runs_total',
  replay: 'idem_replays_total',
  in_progress: 'idem_conflicts_total',
  mismatch: 'idem_mismatches_total',
  refused: 'idem_refusals_total',
  unprotected: 'idem_unprotected_total',
} as const;

const COUNTERS = {
  idem_runs_total: 'Requests that claimed their key and were forwarded to the upstream.',
  idem_replays_total: 'Requests answered with the stored response of an earlier request with the same key.',
  idem_conflicts_total: 'Requests answered 409 because a request with the same key was still running.',
  idem_mismatches_total: 'Requests answered 422 because their key was used with another request.',
  idem_refusals_total: 'Requests refused before the store was asked: malformed or missing key, body too large.',
  idem_passthrough_total: 'Requests forwarded unprotected: method not covered, or no key where keys are optional.',
  idem_unprotected_total:
    'Requests forwarded without a record because the store was down (--on-store-unavailable run-unprotected).',
  idem_stored_total: 'Responses stored for replay.',
  idem_released_total: 'Keys released so that a retry runs again (5xx, upstream failure, shutdown).',
  idem_upstream_errors_total: 'Requests the upstream did not answer: refused connection, timeout, broken response.',
} as const;
type CounterName = keyof typeof COUNTERS;

/** Where a store call failed: while claiming (`begin`), storing the response, or releasing the key. */
type StoreOperation = 'begin' | 'complete' | 'release';

/**
 * The gateway's Prometheus metrics, fed by the HTTP layer's `observe` hook and by the proxy.
 * Rendered in the text exposition format (version 0.0.4) at `/__idem/metrics`.
 */
export class GatewayMetrics {
  readonly #counters = new Map<CounterName, number>(Object.keys(COUNTERS).map((name) => [name as CounterName, 0]));
  readonly #storeErrors = new Map<StoreOperation, number>([
    ['begin', 0],
    ['complete', 0],
    ['release', 0],
  ]);
  readonly #storeLatency = new Histogram();
  readonly #upstreamLatency = new Histogram();

  /** The `observe` hook for `HttpIdempotency`. */
  observe(event: HttpEvent): void {
    if (event.storeMs !== undefined) this.#storeLatency.observe(event.storeMs / 1000);
    switch (event.type) {
      case 'store_error':
        this.#add(this.#storeErrors, 'begin');
        return;
      case 'stored':
        if (event.error === undefined) this.#count('idem_stored_total');
        else this.#add(this.#storeErrors, 'complete');
        return;
      case 'released':
        if (event.error === undefined) this.#count('idem_released_total');
        else this.#add(this.#storeErrors, 'release');
        return;
      default:
        this.#count(DECISION_COUNTERS[event.type]);
    }
  }

  /** One upstream exchange: how long until its response ended (or failed), in ms. */
  upstream(ms: number, failed: boolean): void {
    this.#upstreamLatency.observe(ms / 1000);
    if (failed) this.#count('idem_upstream_errors_total');
  }

  /** The current value of a counter, for tests and the demo. */
  value(name: CounterName): number {
    return this.#counters.get(name) ?? 0;
  }

  /** The exposition text. */
  render(gauges: { inFlight: number; shuttingDown: boolean }): string {
    const lines: string[] = [];
    for (const [name, help] of Object.entries(COUNTERS) as [CounterName, string][]) {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${this.value(name)}`);
    }
    lines.push(
      '# HELP idem_store_errors_total Store calls that failed or timed out, by step.',
      '# TYPE idem_store_errors_total counter',
    );
    for (const [operation, count] of this.#storeErrors)
      lines.push(`idem_store_errors_total{step="${operation}"} ${count}`);
    lines.push(
      '# HELP idem_store_latency_seconds Time spent in the store deciding each protected request (claim, and waits).',
      '# TYPE idem_store_latency_seconds histogram',
      ...this.#storeLatency.render('idem_store_latency_seconds'),
      '# HELP idem_upstream_latency_seconds Time from forwarding a request to the end of the upstream response.',
      '# TYPE idem_upstream_latency_seconds histogram',
      ...this.#upstreamLatency.render('idem_upstream_latency_seconds'),
      '# HELP idem_in_flight_requests Requests being forwarded now.',
      '# TYPE idem_in_flight_requests gauge',
      `idem_in_flight_requests ${gauges.inFlight}`,
      '# HELP idem_shutting_down 1 while the gateway drains before exit.',
      '# TYPE idem_shutting_down gauge',
      `idem_shutting_down ${gauges.shuttingDown ? 1 : 0}`,
    );
    return `${lines.join('\n')}\n`;
  }

  #count(name: CounterName): void {
    this.#add(this.#counters, name);
  }

  #add<K>(map: Map<K, number>, key: K): void {
    map.set(key, (map.get(key) ?? 0) + 1);
  }
}
