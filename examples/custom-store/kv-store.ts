// A store of your own, written only against `idem` (the Store contract and its claim rules) and
// `idem/store-kit` (the wrapper every store operation goes through). It keeps records in a remote
// key-value service that offers compare-and-set, the one thing a store needs to be atomic: each
// operation reads a record, decides with the claim rules, and writes back only if nobody wrote in
// between; if somebody did, it reads again and decides again.
// In your code: import ... from 'idem' and 'idem/store-kit'.
import {
  type AdminStore,
  type ClaimInput,
  type ClaimResult,
  type CompleteInput,
  checkListLimit,
  checkOneConnection,
  checkSweepLimit,
  decideClaim,
  type ExtendInput,
  extendedRecord,
  type GivenClient,
  type IdempotencyRecord,
  invalidOptions,
  isExpired,
  type ListOptions,
  type ListPage,
  type MisconfigurationAdvice,
  StoreOperations,
} from '../../src/store-kit/index.js';
import { connectKv, type KvClient, type KvEntry } from './fake-kv.js';

export interface KvStoreOptions {
  /** A client you manage, or a function returning one (called on first use). Never closed by the store. Give `client` or `url`. */
  client?: GivenClient<KvClient>;
  /** `kv://<token>@<server>`: the store opens its own client on first use and `close()` ends it. Give `client` or `url`. */
  url?: string;
  /** Start of every key the store writes, so several stores can share one service. Default `idem:`. */
  prefix?: string;
}

const NAME = 'kv';

/** The service refused the token: a configuration mistake, not an outage (STORE_MISCONFIGURED). */
const kvMisconfiguration: MisconfigurationAdvice = (error) =>
  (error as { code?: unknown })?.code === 'UNAUTHORIZED' ? 'check the token in the kv:// URL' : undefined;

/**
 * Idem records in a key-value service with conditional writes.
 *
 * @example
 * ```ts
 * const store = new KvStore({ url: 'kv://s3cret@billing' });
 * const send = idempotent(sendInvoice, { store, name: 'send-invoice', key: (invoice) => invoice.id });
 * ```
 */
export class KvStore implements AdminStore {
  readonly name = NAME;
  readonly #prefix: string;
  readonly #ops: StoreOperations<KvClient>;

  constructor(options: KvStoreOptions) {
    checkOneConnection(NAME, 'client', options.client, options.url);
    const { url } = options;
    this.#prefix = options.prefix ?? 'idem:';
    if (typeof this.#prefix !== 'string' || this.#prefix.length > 100) {
      throw invalidOptions(NAME, 'prefix must be a string of at most 100 characters.');
    }
    // One wrapper for every operation: refused after close(), the client opened on first use,
    // driver errors mapped to STORE_UNAVAILABLE or STORE_MISCONFIGURED with the cause kept.
    this.#ops = new StoreOperations<KvClient>({
      store: NAME,
      className: 'KvStore',
      given: options.client,
      openOwn: async () => {
        const client = await connectKv(url as string);
        return { client, end: () => client.close() };
      },
      misconfiguration: kvMisconfiguration,
    });
  }

  claim(input: ClaimInput): Promise<ClaimResult> {
    return this.#ops.run('claim', async (client) => {
      for (;;) {
        const entry = await client.get(this.#key(input.key));
        // The claim rules decide (fresh record, takeover, or the record as it stands); the
        // conditional write makes the decision atomic.
        const answer = decideClaim(entry === undefined ? undefined : decode(entry), input);
        if (!answer.claimed) return answer;
        if ((await client.put(this.#key(input.key), encode(answer.record), entry?.version ?? 0)) !== undefined) {
          return answer;
        }
        // Another claim wrote between our read and our write: two callers both saw the key free,
        // only one write landed. Read again: we now see its record and answer with it.
      }
    });
  }

  complete(input: CompleteInput): Promise<boolean> {
    return this.#ops.run('complete', (client) =>
      this.#update(client, input.key, input.token, (record) => ({
        ...record,
        state: 'completed',
        result: Uint8Array.from(input.result),
        expiresAtMs: input.expiresAtMs,
        updatedAtMs: input.nowMs,
      })),
    );
  }

  release(key: string, token: string): Promise<boolean> {
    return this.#ops.run('release', (client) => this.#update(client, key, token, () => null));
  }

  extend(input: ExtendInput): Promise<boolean> {
    return this.#ops.run('extend', (client) =>
      this.#update(client, input.key, input.token, (record) => extendedRecord(record, input)),
    );
  }

  get(key: string, nowMs?: number): Promise<IdempotencyRecord | null> {
    return this.#ops.run('get', async (client) => {
      const entry = await client.get(this.#key(key));
      if (entry === undefined) return null;
      const record = decode(entry);
      return nowMs !== undefined && isExpired(record, nowMs) ? null : record;
    });
  }

  delete(key: string): Promise<boolean> {
    return this.#ops.run('delete', (client) => client.remove(this.#key(key)));
  }

  list(options: ListOptions = {}): Promise<ListPage> {
    return this.#ops.run('list', (client) => this.#listPage(client, options, checkListLimit(NAME, options.limit)));
  }

  /** Scans from the cursor, `limit + 1` keys at a time, until the page is full or the keys run out. */
  async #listPage(client: KvClient, options: ListOptions, limit: number): Promise<ListPage> {
    const records: IdempotencyRecord[] = [];
    let after = options.cursor === undefined ? undefined : this.#key(options.cursor);
    for (;;) {
      const entries = await client.scan(this.#prefix, after, limit + 1);
      for (const entry of entries) {
        const record = decode(entry);
        if (!isListed(record, options)) continue;
        // The contract: a page hands out a cursor only once one more record is known to follow.
        if (records.length === limit) return { records, nextCursor: records.at(-1)?.key };
        records.push(record);
      }
      if (entries.length < limit + 1) return { records, nextCursor: undefined };
      after = entries.at(-1)?.key;
    }
  }

  sweep(nowMs: number, limitOption?: number): Promise<number> {
    return this.#ops.run('sweep', async (client) => {
      const limit = checkSweepLimit(NAME, limitOption);
      let deleted = 0;
      let after: string | undefined;
      while (deleted < limit) {
        const entries = await client.scan(this.#prefix, after, 1000);
        for (const entry of entries) {
          // Delete only the version judged expired: a claim that renewed the key since is kept.
          if (deleted < limit && isExpired(decode(entry), nowMs) && (await client.remove(entry.key, entry.version))) {
            deleted += 1;
          }
        }
        if (entries.length < 1000) break;
        after = entries.at(-1)?.key;
      }
      return deleted;
    });
  }

  ping(): Promise<void> {
    return this.#ops.run('ping', (client) => client.ping());
  }

  close(): Promise<void> {
    return this.#ops.close();
  }

  /**
   * Changes the record at `key` with `change` (`null` deletes it) only while it is in progress
   * with `token`, written back on the version read; on a conflicting write, reads and checks again.
   */
  async #update(
    client: KvClient,
    key: string,
    token: string,
    change: (record: IdempotencyRecord) => IdempotencyRecord | null,
  ): Promise<boolean> {
    for (;;) {
      const entry = await client.get(this.#key(key));
      if (entry === undefined) return false;
      const record = decode(entry);
      if (record.state !== 'in_progress' || record.token !== token) return false;
      const next = change(record);
      const written =
        next === null
          ? await client.remove(entry.key, entry.version)
          : (await client.put(entry.key, encode(next), entry.version)) !== undefined;
      if (written) return true;
    }
  }

  #key(key: string): string {
    return `${this.#prefix}${key}`;
  }
}

/** Whether `list` shows the record: in the state asked for, and not expired at `nowMs` when given. */
function isListed(record: IdempotencyRecord, options: ListOptions): boolean {
  if (options.state !== undefined && record.state !== options.state) return false;
  return options.nowMs === undefined || !isExpired(record, options.nowMs);
}

/** A record as the service keeps it: JSON, the result as base64. */
function encode(record: IdempotencyRecord): string {
  return JSON.stringify({
    ...record,
    result: record.result === null ? null : Buffer.from(record.result).toString('base64'),
  });
}

function decode(entry: KvEntry): IdempotencyRecord {
  const stored = JSON.parse(entry.value) as Omit<IdempotencyRecord, 'result'> & { result: string | null };
  return { ...stored, result: stored.result === null ? null : new Uint8Array(Buffer.from(stored.result, 'base64')) };
}
