import { readFileSync } from 'node:fs';
import { DEFAULT_LEASE_MS, DEFAULT_RETENTION_MS, DEFAULT_STORE_TIMEOUT_MS } from '../../core/engine.js';
import { type OnStoreUnavailable, STORE_FAULT_POLICIES } from '../../core/store-fault-policy.js';
import type { AnonymousPolicy } from '../../http/caller-scope.js';
import { DEFAULT_MAX_BODY_BYTES, DEFAULT_METHODS } from '../../http/http-idempotency.js';
import { usageError } from '../cli-error.js';
import { parseDuration } from '../duration.js';
import { DEFAULT_STORE_URL } from '../store-url.js';
import {
  DEFAULT_GRACE_MS,
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_UPSTREAM_TIMEOUT_MS,
} from './gateway.js';
import { parseWorkers } from './workers.js';

/** Everything `idem serve` runs with, after flags, config file and defaults are merged. */
export interface ServeConfig {
  /** The API behind the gateway. Required. */
  upstream: string;
  /** Port to listen on; 0 picks a free one. Default 8080. */
  port: number;
  /** Address to listen on. Default `127.0.0.1` (loopback only); `0.0.0.0` for every interface. */
  host: string;
  /** The store URL. Default `sqlite:./idem.db`. */
  store: string;
  /** Refuse protected requests without a key (400). Default false: they pass through unprotected. */
  required: boolean;
  /** Protected methods. Default POST and PATCH. */
  methods: string[];
  /** How long a stored response is replayed, in ms. Default 24 h. */
  retentionMs: number;
  /** How long a claim holds a key before another gateway may take it over, in ms. Default 30 s. */
  leaseMs: number;
  /** Which responses are stored: `default` (not 5xx, 408, 409, 429) or `stripe` (all). Default `default`. */
  policy: 'default' | 'stripe';
  /** A duplicate of a request still running: `reject` (409) or `wait` for its response. Default `reject`. */
  onInProgress: 'throw' | 'reject' | 'wait';
  /** With `wait`, the longest wait, in ms. Default: the lease. */
  waitTimeoutMs: number | undefined;
  /** Namespace of the keys in the store. Default `http`. */
  namespace: string;
  /** Largest request body of a protected request, in bytes. Default 1 MiB. */
  maxBodyBytes: number;
  /**
   * Request headers whose values identify the caller (lower case). With `scopeCookies`, replaces
   * the default: the HTTP layer's `callerScope()`, which reads `Authorization`, `X-API-Key`,
   * `API-Key`, `X-Auth-Token`, `X-Access-Token`, else the whole `Cookie` header.
   */
  scopeHeaders: string[] | undefined;
  /** Cookie names whose values identify the caller; see `scopeHeaders`. */
  scopeCookies: string[] | undefined;
  /** A keyed request with none of those credentials: `refuse` (400), `pass` it unprotected, or `shared` scope. Default `refuse`. */
  anonymous: AnonymousPolicy;
  /** More response headers to replay, besides Content-Type, Location, ETag, Content-Location, Link. */
  replayHeaders: string[];
  /** How long the upstream may stay silent, in ms. Default 60 s. */
  upstreamTimeoutMs: number;
  /** How long shutdown waits for requests in flight, in ms. Default 10 s. */
  graceMs: number;
  /** How long one store call may take before the request is answered 503, in ms. Default 5 s. */
  storeTimeoutMs: number;
  /** How long a completed response answers replays from this process's memory, in ms (`replayCacheMs`). Default 0: off. */
  replayCacheMs: number;
  /**
   * While the store is down: `reject` answers 503 (fail closed); `run-unprotected` forwards the
   * request without a record and adds `Idempotent-Unprotected: true` to its response. `--fail-open`
   * is the old spelling of `run-unprotected`. Default `reject`.
   */
  onStoreUnavailable: OnStoreUnavailable;
  /** Refuse to start when the upstream does not accept connections. Default true. */
  upstreamCheck: boolean;
  /** Longest time a client may take to send a request's head, in ms. Default 10 s. */
  headersTimeoutMs: number;
  /** Longest time a client may take to send a whole request, in ms. Default 60 s. */
  requestTimeoutMs: number;
  /** Most client connections open at once. Default 4096. */
  maxConnections: number;
  /**
   * The token `/__idem/metrics` requires as `Authorization: Bearer <token>`: `--metrics-token`,
   * else `IDEM_METRICS_TOKEN`, else the config file. Default none: metrics are open.
   */
  metricsToken: string | undefined;
  /** Worker processes sharing the port (node:cluster); `auto` or 0 in the settings: one per core. Default 1. */
  workers: number;
}

/** A raw setting as a flag (string, boolean) or a JSON config value gives it. */
type Raw = unknown;

/** The settings a config file may hold, each as the long flag's name in camelCase. */
const FILE_KEYS = [
  'upstream',
  'port',
  'host',
  'store',
  'required',
  'methods',
  'retention',
  'lease',
  'policy',
  'onInProgress',
  'waitTimeout',
  'namespace',
  'maxBody',
  'scopeHeaders',
  'scopeCookies',
  'anonymous',
  'replayHeaders',
  'upstreamTimeout',
  'grace',
  'storeTimeout',
  'replayCache',
  'onStoreUnavailable',
  'failOpen',
  'upstreamCheck',
  'headersTimeout',
  'requestTimeout',
  'maxConnections',
  'metricsToken',
  'workers',
] as const;
type SettingName = (typeof FILE_KEYS)[number];
export type RawSettings = Partial<Record<SettingName, Raw>>;

/** Flags whose name is not the setting's in kebab case: repeatable ones take one item each. */
const FLAG_NAMES: Partial<Record<SettingName, string>> = {
  scopeHeaders: '--scope-header',
  scopeCookies: '--scope-cookie',
};

/** Settings an environment variable may give, between the flag and the config file. */
const ENV_NAMES: Partial<Record<SettingName, string>> = { metricsToken: 'IDEM_METRICS_TOKEN' };

/** An HTTP token (RFC 9110): what a header or cookie name may be. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/i;

/**
 * Reads a JSON config file whose keys are the long flags in camelCase, e.g.
 * `{ "upstream": "http://127.0.0.1:3000", "store": "redis://127.0.0.1:6379", "lease": "30s" }`.
 */
export function readConfigFile(path: string): RawSettings {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw usageError(`--config ${path}: ${code === 'ENOENT' ? 'no such file' : `cannot read it (${code ?? error})`}.`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw usageError(`--config ${path} is not valid JSON: ${(error as Error).message}.`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw usageError(`--config ${path} must hold one JSON object, e.g. {"upstream": "http://127.0.0.1:3000"}.`);
  }
  for (const key of Object.keys(parsed)) {
    if (!(FILE_KEYS as readonly string[]).includes(key)) {
      throw usageError(
        `--config ${path}: unknown setting ${JSON.stringify(key)}; known settings: ${FILE_KEYS.join(', ')}.`,
      );
    }
  }
  return parsed as RawSettings;
}

/**
 * Merges flags (first), the environment (`IDEM_METRICS_TOKEN`), the config file and the
 * defaults, checking every value.
 */
export function resolveServeConfig(
  flags: RawSettings,
  file: RawSettings = {},
  env: Record<string, string | undefined> = {},
): ServeConfig {
  const pick = (name: SettingName): { value: Raw; from: string } | undefined => {
    if (flags[name] !== undefined) return { value: flags[name], from: FLAG_NAMES[name] ?? `--${kebab(name)}` };
    const variable = ENV_NAMES[name];
    if (variable !== undefined && env[variable] !== undefined) return { value: env[variable], from: variable };
    if (file[name] !== undefined) return { value: file[name], from: `"${name}" in the config file` };
    return undefined;
  };
  const text = (name: SettingName, fallback: string) => {
    const raw = pick(name);
    if (raw === undefined) return fallback;
    if (typeof raw.value !== 'string' || raw.value.trim() === '')
      throw usageError(`${raw.from} must be a non-empty string.`);
    return raw.value.trim();
  };
  const flag = (name: SettingName, fallback: boolean) => {
    const raw = pick(name);
    if (raw === undefined) return fallback;
    if (typeof raw.value !== 'boolean') throw usageError(`${raw.from} must be true or false.`);
    return raw.value;
  };
  const duration = (name: SettingName, fallback: number) => {
    const raw = pick(name);
    if (raw === undefined) return fallback;
    if (typeof raw.value !== 'string') throw usageError(`${raw.from} must be a duration string such as "30s".`);
    return parseDuration(raw.value, raw.from);
  };
  const list = (name: SettingName): string[] | undefined => {
    const raw = pick(name);
    if (raw === undefined) return undefined;
    const items = typeof raw.value === 'string' ? [raw.value] : raw.value;
    if (!Array.isArray(items) || items.some((item) => typeof item !== 'string')) {
      throw usageError(`${raw.from} must be a comma-separated list (or a JSON array of strings).`);
    }
    const clean = (items as string[])
      .flatMap((item) => item.split(','))
      .map((item) => item.trim())
      .filter((item) => item !== '');
    if (clean.length === 0) throw usageError(`${raw.from} is empty.`);
    return clean;
  };
  const choice = <T extends string>(name: SettingName, options: readonly T[], fallback: T): T => {
    const value = text(name, fallback);
    if (!(options as readonly string[]).includes(value)) {
      throw usageError(`${pick(name)?.from}: ${JSON.stringify(value)} is not one of ${options.join(', ')}.`);
    }
    return value as T;
  };

  /** `--on-store-unavailable`, or its old spelling `--fail-open`; the two must not contradict. */
  const storeFaultPolicy = (): OnStoreUnavailable => {
    const policy = choice('onStoreUnavailable', STORE_FAULT_POLICIES, 'reject');
    const failOpen = flag('failOpen', false);
    if (failOpen && pick('onStoreUnavailable') !== undefined && policy !== 'run-unprotected') {
      throw usageError(
        `--fail-open contradicts ${pick('onStoreUnavailable')?.from} ${policy}: drop --fail-open, the old spelling of --on-store-unavailable run-unprotected.`,
      );
    }
    return failOpen ? 'run-unprotected' : policy;
  };

  const upstream = pick('upstream');
  if (upstream === undefined) {
    throw usageError(
      '--upstream is required: the API to put behind the gateway, e.g. --upstream http://127.0.0.1:3000.',
    );
  }
  const methods = (list('methods') ?? [...DEFAULT_METHODS]).map((method) => method.toUpperCase());
  for (const method of methods) {
    if (!['POST', 'PATCH', 'PUT', 'DELETE'].includes(method)) {
      throw usageError(
        `--methods: ${method} cannot be protected; list some of POST, PATCH, PUT, DELETE (GET, HEAD and OPTIONS are safe already).`,
      );
    }
  }
  const names = (name: SettingName, what: string): string[] | undefined => {
    const items = list(name);
    const bad = items?.find((item) => !TOKEN.test(item));
    if (bad !== undefined) {
      throw usageError(
        `${pick(name)?.from}: ${JSON.stringify(bad)} is not a ${what} name; give names such as ${what === 'header' ? 'x-api-key' : 'sid'}.`,
      );
    }
    return items;
  };
  const leaseMs = duration('lease', DEFAULT_LEASE_MS);
  if (leaseMs < 100)
    throw usageError(`--lease must be at least 100ms; a lease shorter than a store round trip cannot be held.`);
  const retentionMs = duration('retention', DEFAULT_RETENTION_MS);
  if (retentionMs <= leaseMs) {
    throw usageError(
      `--retention must be longer than --lease (${leaseMs}ms): a record must outlive the lease that protects it.`,
    );
  }
  // A default gives way to the other one given: a head never has longer than its whole request.
  const requestGiven = pick('requestTimeout') === undefined ? undefined : duration('requestTimeout', 0);
  const headersTimeoutMs = duration('headersTimeout', Math.min(DEFAULT_HEADERS_TIMEOUT_MS, requestGiven ?? Infinity));
  const requestTimeoutMs = requestGiven ?? Math.max(DEFAULT_REQUEST_TIMEOUT_MS, headersTimeoutMs);
  if (headersTimeoutMs > requestTimeoutMs) {
    throw usageError(
      `--headers-timeout (${headersTimeoutMs}ms) must not be longer than --request-timeout (${requestTimeoutMs}ms): the head is part of the request.`,
    );
  }
  return {
    upstream: text('upstream', ''),
    port: port(pick('port')),
    host: text('host', '127.0.0.1'),
    store: text('store', DEFAULT_STORE_URL),
    required: flag('required', false),
    methods,
    retentionMs,
    leaseMs,
    policy: choice('policy', ['default', 'stripe'] as const, 'default'),
    onInProgress: choice('onInProgress', ['throw', 'wait', 'reject'] as const, 'throw'),
    waitTimeoutMs: pick('waitTimeout') === undefined ? undefined : duration('waitTimeout', 0),
    namespace: text('namespace', 'http'),
    maxBodyBytes: bytes(pick('maxBody')),
    scopeHeaders: names('scopeHeaders', 'header')?.map((name) => name.toLowerCase()),
    scopeCookies: names('scopeCookies', 'cookie'),
    anonymous: choice('anonymous', ['refuse', 'pass', 'shared'] as const, 'refuse'),
    replayHeaders: (list('replayHeaders') ?? []).map((name) => name.toLowerCase()),
    upstreamTimeoutMs: duration('upstreamTimeout', DEFAULT_UPSTREAM_TIMEOUT_MS),
    graceMs: duration('grace', DEFAULT_GRACE_MS),
    storeTimeoutMs: duration('storeTimeout', DEFAULT_STORE_TIMEOUT_MS),
    replayCacheMs: duration('replayCache', 0),
    onStoreUnavailable: storeFaultPolicy(),
    upstreamCheck: flag('upstreamCheck', true),
    headersTimeoutMs,
    requestTimeoutMs,
    maxConnections: count(pick('maxConnections'), DEFAULT_MAX_CONNECTIONS),
    metricsToken: pick('metricsToken') === undefined ? undefined : text('metricsToken', ''),
    workers: parseWorkers(pick('workers')),
  };
}

/** A whole number above 0, as a number or digits. */
function count(raw: { value: Raw; from: string } | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = typeof raw.value === 'string' && /^\d+$/.test(raw.value.trim()) ? Number(raw.value) : raw.value;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw usageError(`${raw.from}: ${JSON.stringify(raw.value)} is not a whole number above 0.`);
  }
  return value;
}

function port(raw: { value: Raw; from: string } | undefined): number {
  if (raw === undefined) return 8080;
  const value = typeof raw.value === 'string' && /^\d+$/.test(raw.value.trim()) ? Number(raw.value) : raw.value;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) {
    throw usageError(
      `${raw.from}: ${JSON.stringify(raw.value)} is not a port; use a number from 0 to 65535 (0 picks a free port).`,
    );
  }
  return value;
}

const SIZE_UNITS = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 } as const;

/** A body size: bytes as a number, or a string such as `512kb` or `1mb` (binary units). */
export function bytes(raw: { value: Raw; from: string } | undefined): number {
  if (raw === undefined) return DEFAULT_MAX_BODY_BYTES;
  const match = /^(\d+)\s*(b|kb|mb|gb)?$/i.exec(String(raw.value).trim());
  const size =
    match === null
      ? Number.NaN
      : Number(match[1]) * SIZE_UNITS[(match[2] ?? 'b').toLowerCase() as keyof typeof SIZE_UNITS];
  if (!Number.isSafeInteger(size) || size <= 0) {
    throw usageError(
      `${raw.from}: ${JSON.stringify(raw.value)} is not a size; use bytes or a unit, e.g. 512kb or 1mb.`,
    );
  }
  return size;
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}
