/** `idem ui`: checks the flags, opens the store, serves the dashboard until SIGTERM or SIGINT. */
import { isIP } from 'node:net';
import { usageError } from '../cli-error.js';
import { parseDuration } from '../duration.js';
import { DEFAULT_STORE_URL, describeStore, openStore, parseStoreUrl } from '../store-url.js';
import { startDashboard } from './dashboard-server.js';
import { MetricsSampler } from './metrics-sampler.js';

export interface UiOptions {
  store?: string;
  host?: string;
  port?: string;
  token?: string;
  metrics?: string;
  metricsToken?: string;
  metricsInterval?: string;
}

export async function runUi(options: UiOptions, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const host = hostOf(options.host ?? '127.0.0.1');
  const port = portOf(options.port ?? '0');
  // An empty variable counts as unset.
  const token = tokenOf(options.token ?? (env.IDEM_UI_TOKEN || undefined));
  const metrics = samplerOf(options, env);
  const spec = parseStoreUrl(options.store ?? DEFAULT_STORE_URL);
  if (spec.kind === 'memory') {
    throw usageError(
      'memory: lives inside one process, so there is nothing to show from here; name the store your application uses.',
    );
  }
  const stopped = nextSignal();
  const store = await openStore(spec);
  try {
    const dashboard = await startDashboard({
      store,
      storeLabel: describeStore(spec),
      host,
      port,
      ...(token === undefined ? {} : { token }),
      ...(metrics === undefined ? {} : { metrics }),
    });
    // A random token is printed, and rides in the URL's fragment, which the browser keeps to
    // itself; a token the operator chose is not echoed: they know it, and logs may be kept.
    if (token === undefined) {
      process.stdout.write(`idem: dashboard on ${dashboard.pageUrl} (store ${describeStore(spec)})\n`);
      process.stdout.write(
        `idem: operator token for reading and releasing keys: ${dashboard.token} (choose one with --token or IDEM_UI_TOKEN)\n`,
      );
    } else {
      process.stdout.write(
        `idem: dashboard on ${dashboard.url} (store ${describeStore(spec)}); it asks for the operator token you gave, or open ${dashboard.url}#token=<token>\n`,
      );
    }
    await stopped;
    await dashboard.close();
  } finally {
    await store.close();
  }
}

function nextSignal(): Promise<void> {
  return new Promise((resolve) => {
    const on = () => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve();
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}

function hostOf(host: string): string {
  if (host === 'localhost' || isIP(host) !== 0) return host;
  throw usageError(`--host ${JSON.stringify(host)}: give an IP address to listen on, e.g. 127.0.0.1.`);
}

function portOf(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65_535) {
    throw usageError(`--port ${JSON.stringify(text)}: use a port from 0 to 65535 (0 picks a free one).`);
  }
  return Number(text);
}

function tokenOf(token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  if (token.length < 16 || /\s/.test(token)) {
    throw usageError(
      '--token (or IDEM_UI_TOKEN): use at least 16 characters without spaces; leave it out for a random one.',
    );
  }
  return token;
}

function samplerOf(options: UiOptions, env: NodeJS.ProcessEnv): MetricsSampler | undefined {
  if (options.metrics === undefined) {
    if (options.metricsToken !== undefined || options.metricsInterval !== undefined) {
      throw usageError('--metrics-token and --metrics-interval go with --metrics.');
    }
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(options.metrics);
  } catch {
    throw usageError(
      `--metrics ${JSON.stringify(options.metrics)}: give the URL of idem serve's metrics, e.g. http://127.0.0.1:8080/__idem/metrics.`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usageError(`--metrics ${JSON.stringify(options.metrics)}: use an http:// or https:// URL.`);
  }
  const token = options.metricsToken ?? (env.IDEM_METRICS_TOKEN || undefined);
  return new MetricsSampler({
    url: url.toString(),
    intervalMs: parseDuration(options.metricsInterval ?? '15s', '--metrics-interval'),
    ...(token === undefined ? {} : { token }),
  });
}
