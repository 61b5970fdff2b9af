// A stand-in for a remote key-value service (think etcd, Consul, DynamoDB, a KV HTTP API): every
// call is asynchronous, as over the network; writes can be made conditional on the version last
// read (compare-and-set); the service can be down, and refuses a wrong token. It lives in this
// process, in a Map, so the example runs with nothing installed.

/** What the service answers with when it refuses a call: `UNREACHABLE` or `UNAUTHORIZED`. */
export class KvError extends Error {
  override readonly name = 'KvError';
  readonly code: 'UNREACHABLE' | 'UNAUTHORIZED';

  constructor(code: KvError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

/** One stored entry and its version: 1 on the first write, +1 on every write after. */
export interface KvEntry {
  key: string;
  value: string;
  version: number;
}

/** The service itself: one per name, found by `connectKv`. */
export class FakeKvServer {
  /** While true, every call fails with `UNREACHABLE`, as a server that is down or cut off. */
  down = false;
  readonly token: string;
  readonly #entries = new Map<string, KvEntry>();
  static readonly #byName = new Map<string, FakeKvServer>();

  constructor(name: string, token: string) {
    this.token = token;
    FakeKvServer.#byName.set(name, this);
  }

  static named(name: string): FakeKvServer | undefined {
    return FakeKvServer.#byName.get(name);
  }

  /** Runs one request as the service would: after a network hop, all at once, or refused. */
  async request<T>(token: string, handle: (entries: Map<string, KvEntry>) => T): Promise<T> {
    await new Promise((resolve) => setImmediate(resolve));
    if (this.down) throw new KvError('UNREACHABLE', 'connect ECONNREFUSED: the kv service does not answer');
    if (token !== this.token) throw new KvError('UNAUTHORIZED', 'the token was refused');
    return handle(this.#entries);
  }
}

/** The client a program holds: what the store is written against. */
export interface KvClient {
  /** The entry at `key`, or `undefined`. */
  get(key: string): Promise<KvEntry | undefined>;
  /**
   * Writes `value` at `key` only if the key is at `ifVersion` now (0: only if there is no entry).
   * Resolves with the new version, or `undefined` when the condition failed and nothing was written.
   */
  put(key: string, value: string, ifVersion: number): Promise<number | undefined>;
  /** Deletes `key`, only if it is at `ifVersion` when given. True when an entry was deleted. */
  remove(key: string, ifVersion?: number): Promise<boolean>;
  /** Up to `limit` entries whose keys start with `prefix` and sort after `after`, in key order. */
  scan(prefix: string, after: string | undefined, limit: number): Promise<KvEntry[]>;
  /** Answers when the service can serve. */
  ping(): Promise<void>;
  /** Ends the connection; calls after it fail. */
  close(): Promise<void>;
}

/** Opens a client on `kv://<token>@<server name>`. */
export async function connectKv(url: string): Promise<KvClient> {
  const { username: token, hostname: name } = new URL(url);
  const server = FakeKvServer.named(name);
  if (server === undefined) throw new KvError('UNREACHABLE', `getaddrinfo ENOTFOUND ${name}`);
  let open = true;
  const call = <T>(handle: (entries: Map<string, KvEntry>) => T): Promise<T> => {
    if (!open) return Promise.reject(new Error('the connection is closed'));
    return server.request(token, handle);
  };
  return {
    get: (key) => call((entries) => copy(entries.get(key))),
    put: (key, value, ifVersion) =>
      call((entries) => {
        if ((entries.get(key)?.version ?? 0) !== ifVersion) return undefined;
        entries.set(key, { key, value, version: ifVersion + 1 });
        return ifVersion + 1;
      }),
    remove: (key, ifVersion) =>
      call((entries) => {
        const entry = entries.get(key);
        if (entry === undefined || (ifVersion !== undefined && entry.version !== ifVersion)) return false;
        return entries.delete(key);
      }),
    scan: (prefix, after, limit) =>
      call((entries) =>
        [...entries.keys()]
          .filter((key) => key.startsWith(prefix) && (after === undefined || key > after))
          .sort()
          .slice(0, limit)
          .map((key) => copy(entries.get(key)) as KvEntry),
      ),
    ping: () => call(() => undefined),
    close: async () => {
      open = false;
    },
  };
}

function copy(entry: KvEntry | undefined): KvEntry | undefined {
  return entry === undefined ? undefined : { ...entry };
}
