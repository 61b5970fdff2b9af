/**
 * Conflicts (409: the key was still running) and mismatches (422: the key was used with another
 * request) are answers `idem serve` gives and never writes to the store. The dashboard learns
 * them by sampling the gateway's Prometheus endpoint (`/__idem/metrics`) while it runs: each
 * sample is the counters' growth since the one before.
 */

/** The counters sampled, as `idem serve` names them. */
export const SAMPLED = {
  conflicts: 'idem_conflicts_total',
  mismatches: 'idem_mismatches_total',
  runs: 'idem_runs_total',
  replays: 'idem_replays_total',
} as const;
type Series = keyof typeof SAMPLED;

/** Samples kept: at the default 15 s interval, the last 30 minutes. */
const KEPT = 120;

export interface MetricsSample {
  /** When it was taken (ms since epoch). */
  atMs: number;
  /** Growth of each counter since the previous sample; the first sample has none. */
  delta: Record<Series, number>;
}

export interface MetricsReport {
  enabled: boolean;
  /** The endpoint, without credentials. */
  source?: string;
  intervalMs?: number;
  samples: MetricsSample[];
  /** Why the last sample failed, when it did. */
  lastError?: string;
}

export interface MetricsSamplerOptions {
  /** The gateway's metrics URL, e.g. http://127.0.0.1:8080/__idem/metrics. */
  url: string;
  /** Sent as `Authorization: Bearer <token>` (the gateway's --metrics-token). */
  token?: string;
  /** Between samples, in ms. */
  intervalMs: number;
}

/** Samples the gateway's counters every `intervalMs` until `stop()`. */
export class MetricsSampler {
  readonly #options: MetricsSamplerOptions;
  readonly #samples: MetricsSample[] = [];
  #previous: Record<Series, number> | undefined;
  #lastError: string | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: MetricsSamplerOptions) {
    this.#options = options;
  }

  /** Takes a first sample now, then one per interval. */
  start(): void {
    void this.sample();
    this.#timer = setInterval(() => void this.sample(), this.#options.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** One sample; a failure is kept as `lastError`, never thrown. */
  async sample(): Promise<void> {
    try {
      const headers: Record<string, string> = {};
      if (this.#options.token !== undefined) headers.authorization = `Bearer ${this.#options.token}`;
      const response = await fetch(this.#options.url, { headers, signal: AbortSignal.timeout(3000) });
      if (!response.ok)
        throw new Error(`HTTP ${response.status}${response.status === 401 ? ' (check --metrics-token)' : ''}`);
      this.#add(parseCounters(await response.text()), Date.now());
      this.#lastError = undefined;
    } catch (error) {
      this.#lastError =
        error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
    }
  }

  #add(counters: Record<Series, number>, atMs: number): void {
    const previous = this.#previous;
    this.#previous = counters;
    if (previous === undefined) return;
    const delta = {} as Record<Series, number>;
    // A counter that went down means the gateway restarted: count from zero again.
    for (const name of Object.keys(SAMPLED) as Series[]) {
      const growth = counters[name] - previous[name];
      delta[name] = growth >= 0 ? growth : counters[name];
    }
    this.#samples.push({ atMs, delta });
    if (this.#samples.length > KEPT) this.#samples.shift();
  }

  report(): MetricsReport {
    const url = new URL(this.#options.url);
    url.username = '';
    url.password = '';
    return {
      enabled: true,
      source: url.toString(),
      intervalMs: this.#options.intervalMs,
      samples: [...this.#samples],
      ...(this.#lastError === undefined ? {} : { lastError: this.#lastError }),
    };
  }
}

/** The sampled counters from Prometheus text, summed over their labels; 0 when absent. */
export function parseCounters(text: string): Record<Series, number> {
  const totals = { conflicts: 0, mismatches: 0, runs: 0, replays: 0 };
  const byName = new Map<string, Series>(Object.entries(SAMPLED).map(([series, name]) => [name, series as Series]));
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    const series = match === null ? undefined : byName.get(match[1] as string);
    const value = Number(match?.[2]);
    if (series !== undefined && Number.isFinite(value)) totals[series] += value;
  }
  return totals;
}
