import type { Command } from 'commander';
import type { EncryptionKeys } from '../../core/keyring.js';
import type { Store } from '../../core/store.js';
import { assertReachable } from '../check/reachable.js';
import { CliError, reasonOf, usageError } from '../cli-error.js';
import { formatDuration } from '../duration.js';
import { encryptionKeysFromEnv } from '../encryption-env.js';
import { Gateway, parseUpstream } from '../gateway/gateway.js';
import { type RawSettings, readConfigFile, resolveServeConfig, type ServeConfig } from '../gateway/gateway-config.js';
import { supervisesWorkers, superviseWorkers, workerRole } from '../gateway/workers.js';
import { describeStore, openStore, parseStoreUrl } from '../store-url.js';

/** Where the command writes; tests and the demo pass their own. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
}

export const consoleOutput: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** `idem serve`: the gateway. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .summary('run a gateway that makes any HTTP API idempotent')
    .description(
      'Run a reverse proxy in front of --upstream that applies Idempotency-Key semantics to every request it ' +
        'forwards: the first request with a key runs, a retry replays its response, a duplicate in flight gets 409, ' +
        'the same key with another body (or on another route) 422. Keys are scoped by the caller: by default the ' +
        'Authorization, X-API-Key, API-Key, X-Auth-Token or X-Access-Token header, else the Cookie header; a keyed ' +
        'request with none of them is refused with 400 (see --anonymous). Health: GET ' +
        '/__idem/health (liveness), GET /__idem/ready (readiness: the store answers); Prometheus metrics: GET ' +
        '/__idem/metrics (with --metrics-token or IDEM_METRICS_TOKEN, only for that bearer token). SIGTERM or SIGINT drains requests in flight (up ' +
        'to --grace), then exits. Set IDEM_ENCRYPTION_KEY to encrypt stored responses at rest (IDEM_ENCRYPTION_OLD_KEYS, comma-separated, still opens records sealed with older keys).',
    )
    .option('--upstream <url>', 'the API to protect, e.g. http://127.0.0.1:3000 (required)')
    .option('-p, --port <port>', 'port to listen on, 0 for any free port (default 8080)')
    .option('--host <address>', 'address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)')
    .option(
      '--store <url>',
      'sqlite:./idem.db | postgres://... | redis://... | mysql://... | memory: (default sqlite:./idem.db)',
    )
    .option('--required', 'refuse protected requests that carry no Idempotency-Key (400)')
    .option('--methods <list>', 'methods to protect, comma-separated (default POST,PATCH)')
    .option('--retention <duration>', 'how long a response is replayed (default 24h)')
    .option('--lease <duration>', 'how long a request holds its key before another may take over (default 30s)')
    .option(
      '--policy <name>',
      'default: 5xx and 400, 401, 403, 404, 408, 409, 422, 429 are not stored; stripe: every response is stored',
    )
    .option(
      '--on-in-progress <mode>',
      'throw: answer duplicates 409 (reject, the old name, works too); wait: wait for the first response (default throw)',
    )
    .option('--wait-timeout <duration>', 'with --on-in-progress wait, the longest wait (default: the lease)')
    .option('--namespace <name>', 'namespace of the keys in the store (default http)')
    .option('--max-body <size>', 'largest body of a protected request, e.g. 512kb (default 1mb)')
    .option(
      '--scope-header <name>',
      'a header that identifies the caller and scopes its keys (repeat for more); with --scope-cookie, replaces ' +
        'the default: authorization, x-api-key, api-key, x-auth-token, x-access-token, else the cookie header',
      collect,
    )
    .option('--scope-cookie <name>', 'a cookie that identifies the caller, e.g. sid (repeat for more)', collect)
    .option(
      '--anonymous <policy>',
      'a keyed request with no credential: refuse (400 caller-unknown), pass (forward unprotected) or shared ' +
        "(one scope for every such caller; only if any caller may see any other one's responses) (default refuse)",
    )
    .option('--replay-headers <list>', 'more response headers to replay, besides content-type, location, etag, link')
    .option('--upstream-timeout <duration>', 'longest silence from the upstream before 504 (default 60s)')
    .option('--grace <duration>', 'on shutdown, how long requests in flight may finish (default 10s)')
    .option('--store-timeout <duration>', 'longest store call before 503 (default 5s)')
    .option(
      '--replay-cache <duration>',
      'how long a completed response answers replays from memory, without a store call; a key deleted ' +
        'from the store still replays for that long (default 0: off)',
    )
    .option(
      '--on-store-unavailable <policy>',
      'while the store is down: reject (503, the default) or run-unprotected (forward without a record, ' +
        'with Idempotent-Unprotected: true on the response)',
    )
    .option('--fail-open', 'the old spelling of --on-store-unavailable run-unprotected')
    .option(
      '--headers-timeout <duration>',
      'longest time a client may take to send a request head, then 408 (default 10s)',
    )
    .option(
      '--request-timeout <duration>',
      'longest time a client may take to send a whole request, then 408 (default 60s)',
    )
    .option('--max-connections <n>', 'most client connections open at once; more are closed (default 4096)')
    .option(
      '--metrics-token <token>',
      'require Authorization: Bearer <token> on /__idem/metrics (401 otherwise); health and ready stay open. ' +
        'Prefer IDEM_METRICS_TOKEN: a flag shows in the process list',
    )
    .option(
      '--workers <n>',
      'worker processes sharing the port, auto (or 0) for one per core; needs a shared store, not memory: (default 1)',
    )
    .option('--no-upstream-check', 'start even if the upstream does not accept connections yet')
    .option('-c, --config <file>', 'JSON file with these settings in camelCase; flags win over it')
    .action(async (_options: Record<string, unknown>, command: Command) => {
      const flags: RawSettings = {};
      for (const [name, value] of Object.entries(command.opts())) {
        if (name === 'config' || command.getOptionValueSource(name) !== 'cli') continue;
        flags[(REPEATED[name] ?? name) as keyof RawSettings] = value;
      }
      const configPath = command.opts().config as string | undefined;
      const config = resolveServeConfig(flags, configPath === undefined ? {} : readConfigFile(configPath), process.env);
      if (supervisesWorkers(config)) return superviseWorkers(config, consoleOutput, nextSignal);
      // Catch the signals before the "listening" line: whoever reads it may signal at once.
      const worker = workerRole(config);
      const output = worker?.output ?? consoleOutput;
      const signal = worker?.signal ?? nextSignal();
      const gateway = await startGateway(worker?.config ?? config, output);
      worker?.ready();
      await untilSignal(gateway, await signal, output, worker === undefined);
    });
}

/** Repeatable flags (one item each) and the setting their items make up. */
const REPEATED: Record<string, string> = { scopeHeader: 'scopeHeaders', scopeCookie: 'scopeCookies' };

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A gateway listening, with the store it owns. */
export interface RunningGateway {
  gateway: Gateway;
  store: Store;
  url: string;
}

/** Checks the settings, reaches the store and upstream, and starts listening. */
export async function startGateway(config: ServeConfig, output: Output): Promise<RunningGateway> {
  let upstream: URL;
  try {
    upstream = parseUpstream(config.upstream);
  } catch (error) {
    throw usageError(reasonOf(error));
  }
  const spec = parseStoreUrl(config.store);
  if (config.upstreamCheck) {
    await assertReachable(upstream, 'the upstream', 'Start it first, fix --upstream, or pass --no-upstream-check.');
  }
  const store = await openStore(spec, { timeoutMs: Math.min(config.storeTimeoutMs, 5000) });
  let gateway: Gateway;
  try {
    gateway = new Gateway({
      upstream,
      store,
      required: config.required,
      methods: config.methods,
      retentionMs: config.retentionMs,
      leaseMs: config.leaseMs,
      policy: config.policy,
      onInProgress: config.onInProgress,
      ...(config.waitTimeoutMs === undefined ? {} : { waitTimeoutMs: config.waitTimeoutMs }),
      namespace: config.namespace,
      maxBodyBytes: config.maxBodyBytes,
      ...(config.scopeHeaders === undefined ? {} : { scopeHeaders: config.scopeHeaders }),
      ...(config.scopeCookies === undefined ? {} : { scopeCookies: config.scopeCookies }),
      anonymous: config.anonymous,
      keyPerRoute: false,
      replayHeaders: config.replayHeaders,
      upstreamTimeoutMs: config.upstreamTimeoutMs,
      graceMs: config.graceMs,
      storeTimeoutMs: config.storeTimeoutMs,
      replayCacheMs: config.replayCacheMs,
      onStoreUnavailable: config.onStoreUnavailable,
      headersTimeoutMs: config.headersTimeoutMs,
      requestTimeoutMs: config.requestTimeoutMs,
      maxConnections: config.maxConnections,
      ...(config.metricsToken === undefined ? {} : { metricsToken: config.metricsToken }),
      ...withEncryption(encryptionKeysFromEnv()),
    });
  } catch (error) {
    await store.close();
    throw usageError(reasonOf(error));
  }
  let url: string;
  try {
    url = await gateway.listen(config.port, config.host);
  } catch (error) {
    await store.close();
    const code = (error as { code?: string }).code;
    if (code === 'EADDRINUSE') {
      throw new CliError(
        `port ${config.port} on ${config.host} is already in use: choose another with --port (0 picks a free one).`,
      );
    }
    throw new CliError(`cannot listen on ${config.host}:${config.port}: ${reasonOf(error)}.`);
  }
  const keys = config.required ? 'required' : 'optional';
  output.out(
    `idem: gateway listening on ${url} -> ${upstream.href.replace(/\/$/, '')} (store ${describeStore(spec)}; ` +
      `keys ${keys} on ${config.methods.join(',')}; retention ${formatDuration(config.retentionMs)}, lease ${formatDuration(config.leaseMs)})`,
  );
  const guarded = config.metricsToken === undefined ? '' : ' (bearer token required)';
  output.out(`idem: health ${url}/__idem/health, ready ${url}/__idem/ready, metrics ${url}/__idem/metrics${guarded}`);
  if (spec.kind === 'memory') {
    output.err(
      'idem: warning: memory: is for development only: keys live in this process, are lost on exit and are not ' +
        'shared with other gateways, and a full store refuses new keys (503). Use sqlite:, postgres://, redis:// ' +
        'or mysql:// in production.',
    );
  }
  return { gateway, store, url };
}

/** The first SIGTERM or SIGINT from now on. */
export function nextSignal(): Promise<NodeJS.Signals> {
  return new Promise<NodeJS.Signals>((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(signal);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}

/**
 * After `signal`: drains, releases what cannot finish, and closes the store. A second signal exits
 * at once, unless `secondSignalForces` is false (a worker: its supervisor decides).
 */
export async function untilSignal(
  running: RunningGateway,
  signal: NodeJS.Signals,
  output: Output,
  secondSignalForces = true,
): Promise<void> {
  // A second signal means "now": exit without waiting for the grace period.
  const force = () => {
    output.err('idem: second signal: exiting now; keys of requests in flight stay claimed until their lease ends.');
    process.exit(1);
  };
  if (secondSignalForces) {
    process.once('SIGTERM', force);
    process.once('SIGINT', force);
  }
  output.err(`idem: ${signal}: no longer accepting connections; ${running.gateway.inFlight} request(s) in flight.`);
  const report = await running.gateway.close();
  await running.store.close();
  output.err(
    `idem: stopped: ${report.finished} request(s) finished` +
      (report.cutOff > 0 ? `, ${report.cutOff} cut off after the grace period (their keys were released).` : '.'),
  );
}

function withEncryption(keys: EncryptionKeys | undefined): { encryptionKey?: EncryptionKeys } {
  return keys === undefined ? {} : { encryptionKey: keys };
}
