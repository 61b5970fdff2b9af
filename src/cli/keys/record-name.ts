import type { Command } from 'commander';
import { storeKeyOf } from '../../core/keys.js';
import { callerScope, httpStoreKey } from '../../http/caller-scope.js';
import type { HttpRequestInfo } from '../../http/http-types.js';
import { usageError } from '../cli-error.js';

const KEY_HELP = `
A record is named either by its store key, the hash that \`idem keys list\` prints:
  idem keys show 3q2-7w...
or by the caller's raw key and the credentials the client sent with it, which rebuild the scope
the gateway (and the HTTP adapters) keep keys in; the route plays no part:
  idem keys show --key order-42 --header 'authorization: Bearer sk_test'
  idem keys show --key order-42 --cookie sid=abc123 --scope-cookie sid
Without --scope-header/--scope-cookie the default scope is rebuilt: the Authorization, X-API-Key,
API-Key, X-Auth-Token and X-Access-Token headers given, else the Cookie header (--cookie). Give
--scope-header/--scope-cookie as the gateway was started with them. --anonymous names the key of
callers without credentials, on a gateway run with --anonymous shared. For an HTTP adapter set
up with keyPerRoute: true, add the route: --path /payments [--method POST].
For keys of other faces, give the namespace and scope they used; for idempotent(fn) the namespace
is its name option (or the function's name) and the scope '' unless a scope function is set:
  idem keys show --key order-42 --namespace chargeCard --scope tenant-7`;

/** How a command names one record: by store key, or by raw key and scope. */
export interface KeyOptions {
  store?: string;
  key?: string;
  scope?: string;
  header?: string[];
  cookie?: string[];
  authorization?: string;
  scopeHeader?: string[];
  scopeCookie?: string[];
  anonymous?: boolean;
  path?: string;
  method?: string;
  namespace?: string;
  json?: boolean;
}

/** Adds the ways to name one record (see KEY_HELP) to `command`. */
export function withKeyOptions(command: Command, storeHelp: string): Command {
  return command
    .argument('[storeKey]', 'the store key, as `idem keys list` prints it')
    .option('--store <url>', storeHelp)
    .option('--key <key>', 'the raw key the client sent, instead of the store key')
    .option(
      '--header <name:value>',
      "with --key: a header the client sent, e.g. 'authorization: Bearer x' (repeat)",
      collect,
    )
    .option('--cookie <name=value>', 'with --key: a cookie the client sent (repeat)', collect)
    .option('--authorization <value>', "with --key: short for --header 'authorization: <value>'")
    .option('--scope-header <name>', 'with --key: a --scope-header the gateway runs with (repeat)', collect)
    .option('--scope-cookie <name>', 'with --key: a --scope-cookie the gateway runs with (repeat)', collect)
    .option('--anonymous', 'with --key: the shared key of callers without credentials (--anonymous shared)')
    .option('--path <path>', 'with --key: the route, only for HTTP adapters with keyPerRoute: true')
    .option('--method <method>', 'with --key --path: the request method (default POST)')
    .option('--scope <scope>', 'with --key: the scope, for keys of other faces (instead of credentials)')
    .option('--namespace <name>', 'with --key: the namespace (default http)')
    .addHelpText('after', KEY_HELP);
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Options that rebuild an HTTP caller's scope. */
const CALLER_OPTIONS = [
  'header',
  'cookie',
  'authorization',
  'scopeHeader',
  'scopeCookie',
  'anonymous',
  'path',
  'method',
] as const;

/** The store key named on the command line; see KEY_HELP. */
export function storeKeyFrom(storeKey: string | undefined, options: KeyOptions): string {
  if (storeKey !== undefined && options.key !== undefined) throw usageError('give the store key or --key, not both.');
  if (storeKey !== undefined) {
    const stray = [...CALLER_OPTIONS, 'scope', 'namespace'].find(
      (name) => options[name as keyof KeyOptions] !== undefined,
    );
    if (stray !== undefined) {
      throw usageError(`--${kebab(stray)} goes with --key; a store key names the record by itself.`);
    }
    return storeKey;
  }
  if (options.key === undefined) {
    throw usageError(
      "name a record: give its store key (from idem keys list), or --key with the caller's credentials (--header, --cookie) or --scope.",
    );
  }
  const namespace = options.namespace ?? 'http';
  if (options.scope !== undefined) {
    const stray = CALLER_OPTIONS.find((name) => options[name] !== undefined);
    if (stray !== undefined) {
      throw usageError(`give --scope (keys of other faces) or --${kebab(stray)} (HTTP keys), not both.`);
    }
    return storeKeyOf(namespace, options.scope, options.key);
  }
  return httpKey(namespace, options.key, options);
}

/** The store key the HTTP layer gave the client's request: `callerScope` over the credentials given. */
function httpKey(namespace: string, key: string, options: KeyOptions): string {
  const method = (options.method ?? 'POST').toUpperCase();
  const route = options.path?.split('?')[0] ?? '/';
  const header = headerReader(givenHeaders(options));
  const scope = callerOf(options, { method, route, header, body: undefined });
  if (options.path === undefined) {
    if (options.method !== undefined) throw usageError('--method goes with --path (keyPerRoute: true).');
    return httpStoreKey({ namespace, scope, method, route, key });
  }
  if (!route.startsWith('/')) throw usageError(`--path ${JSON.stringify(options.path)} must start with /.`);
  return httpStoreKey({ namespace, scope, method, route, key, keyPerRoute: true });
}

/** The headers the client sent, from --header, --authorization and --cookie: values by lower-case name. */
function givenHeaders(options: KeyOptions): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  const add = (name: string, value: string) => headers.set(name, [...(headers.get(name) ?? []), value]);
  for (const header of options.header ?? []) {
    const at = header.indexOf(':');
    const name = header.slice(0, at).trim().toLowerCase();
    if (at <= 0 || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) {
      throw usageError(`--header ${JSON.stringify(header)}: write name:value, e.g. 'authorization: Bearer sk_test'.`);
    }
    add(name, header.slice(at + 1).trim());
  }
  if (options.authorization !== undefined) add('authorization', options.authorization);
  for (const cookie of options.cookie ?? []) {
    if (cookie.indexOf('=') <= 0)
      throw usageError(`--cookie ${JSON.stringify(cookie)}: write name=value, e.g. sid=abc123.`);
    add('cookie', cookie.trim());
  }
  return headers;
}

/**
 * Reads the headers as Node gives them to the HTTP layer: a repeated Authorization keeps its
 * first value, cookies join with "; ", other headers with ", ".
 */
function headerReader(headers: Map<string, string[]>): HttpRequestInfo['header'] {
  return (name) => {
    const values = headers.get(name);
    if (values === undefined) return undefined;
    if (name === 'authorization') return values[0];
    return values.join(name === 'cookie' ? '; ' : ', ');
  };
}

/**
 * The caller's scope, with the gateway's --scope-header/--scope-cookie when given; `undefined` for
 * --anonymous, which must then come without credentials.
 */
function callerOf(options: KeyOptions, request: HttpRequestInfo): string | undefined {
  const named = options.scopeHeader !== undefined || options.scopeCookie !== undefined;
  const scopeOf = callerScope({
    ...(options.scopeHeader === undefined ? {} : { headers: options.scopeHeader }),
    ...(options.scopeCookie === undefined ? {} : { cookies: options.scopeCookie }),
  });
  const scope = scopeOf(request);
  if (scope === undefined && !options.anonymous) {
    throw usageError(
      `--key needs the credentials the client sent: the gateway scopes keys by them. Give --header 'authorization: Bearer ...' or --cookie name=value${named ? ' (as named by --scope-header/--scope-cookie)' : ''}, or --anonymous for a gateway run with --anonymous shared.`,
    );
  }
  if (scope !== undefined && options.anonymous) {
    throw usageError('--anonymous names the key of callers without credentials; drop it, or drop --header/--cookie.');
  }
  // undefined: the shared scope of callers without credentials (`--anonymous`).
  return scope;
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}
