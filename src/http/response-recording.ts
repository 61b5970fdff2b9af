import type { Lease } from '../core/engine.js';
import { ErrorCode, IdempotencyError, isIdempotencyError } from '../core/errors.js';
import { OutcomeKind } from '../core/outcome.js';
import type { HttpEvent } from './http-idempotency.js';
import type { HttpResponseData } from './http-types.js';

/**
 * Collects the response the handler sends, as it streams out, and stores or releases it at the
 * end. The client gets its bytes as they are written: nothing waits for the recording.
 */
/** A header's value as Node and the frameworks give it. */
type HeaderValue = string | number | readonly string[] | undefined;

export class ResponseRecording {
  readonly #lease: Lease;
  readonly #replayHeaders: Set<string>;
  readonly #stores: (status: number) => boolean;
  readonly #report: (event: HttpEvent) => void;
  readonly #limit: number;
  #status = 200;
  #headers: [string, string][] = [];
  /** What the handler wrote, as it gave it: text is encoded once, into the stored record. */
  #chunks: BodyChunk[] = [];
  #size = 0;
  #overflow = false;
  #done = false;

  /**
   * @param replayHeaders response headers to keep (lower case)
   * @param stores the cache policy: true when a response with this status is stored
   * @param report where `stored` and `released` events go (the `observe` option)
   */
  constructor(
    lease: Lease,
    replayHeaders: Set<string>,
    stores: (status: number) => boolean,
    report: (event: HttpEvent) => void,
  ) {
    this.#lease = lease;
    this.#replayHeaders = replayHeaders;
    this.#stores = stores;
    this.#report = report;
    this.#limit = lease.maxResultBytes;
  }

  /** Aborts when the lease is lost to another request. */
  get signal(): AbortSignal {
    return this.#lease.signal;
  }

  /** The status and headers as sent; only allow-listed headers are kept. */
  head(status: number, headers: Iterable<[string, HeaderValue]>): void {
    this.#status = status;
    this.#headers = [];
    for (const [name, value] of headers) {
      const lower = name.toLowerCase();
      if (this.#replayHeaders.has(lower)) this.#keep(lower, value);
    }
  }

  /**
   * The status and headers as sent, looked up by name (lower case): cheaper than `head` when the
   * response can answer for one header, as Node's `getHeader` does.
   */
  headFrom(status: number, header: (name: string) => HeaderValue): void {
    this.#status = status;
    this.#headers = [];
    for (const name of this.#replayHeaders) this.#keep(name, header(name));
  }

  #keep(name: string, value: HeaderValue): void {
    if (value === undefined) return;
    if (Array.isArray(value)) for (const item of value) this.#headers.push([name, String(item)]);
    else this.#headers.push([name, String(value)]);
  }

  /**
   * A chunk of the body as it was sent (text in `encoding`, default UTF-8); ignored once the
   * recording is finished. Neither copied nor encoded here: the stored record is built in one
   * buffer at the end.
   */
  write(chunk: Uint8Array | string, encoding: BufferEncoding = 'utf8'): void {
    if (this.#overflow || this.#done) return;
    const text = typeof chunk === 'string';
    this.#size += text ? Buffer.byteLength(chunk, encoding) : chunk.length;
    if (this.#size > this.#limit) {
      // Keep counting, stop keeping: a retry will be told the response was too large.
      this.#overflow = true;
      this.#chunks = [];
      return;
    }
    this.#chunks.push(text ? { text: chunk, encoding } : chunk);
  }

  /** The whole response was sent: store it if the policy says so, else release the key. */
  async finish(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    if (!this.#stores(this.#status)) {
      await this.#release();
      return;
    }
    try {
      if (this.#overflow) {
        await this.#lease.complete({ kind: OutcomeKind.tooLarge, payload: Buffer.from(String(this.#size)) });
      } else {
        await this.#lease.complete({
          kind: OutcomeKind.value,
          payload: encodeResponse(this.#status, this.#headers, this.#chunks, this.#size),
        });
      }
      this.#report({ type: 'stored' });
    } catch (error) {
      // The client already has its answer; a retry finds the key in progress until the lease ends.
      this.#report({ type: 'stored', error: asIdemError(error) });
    }
  }

  /**
   * The response broke off after the handler (or upstream) may have acted, so it cannot be
   * replayed: the key is completed as "not stored" and a retry gets 410 response-not-stored,
   * whose detail gives `reason` (e.g. `the upstream connection broke mid-body`), not a second run.
   * A status the cache policy does not store releases the key instead, as `finish` would.
   */
  async notStored(reason: string): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    this.#chunks = [];
    if (!this.#stores(this.#status)) {
      await this.#release();
      return;
    }
    try {
      await this.#lease.complete({ kind: OutcomeKind.notStored, payload: Buffer.from(reason) });
      this.#report({ type: 'stored' });
    } catch (error) {
      this.#report({ type: 'stored', error: asIdemError(error) });
    }
  }

  /**
   * The client went away while the handler may still be running: keep the claim but stop
   * extending it. A response the handler still sends is stored; otherwise the lease runs out.
   */
  abandon(): void {
    if (!this.#done) this.#lease.stopHeartbeat();
  }

  /** The handler threw before answering: release so a retry runs again. */
  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    await this.#release();
  }

  async #release(): Promise<void> {
    try {
      await this.#lease.release();
      this.#report({ type: 'released' });
    } catch (error) {
      this.#report({ type: 'released', error: asIdemError(error) });
    }
  }
}

function asIdemError(error: unknown): IdempotencyError {
  return isIdempotencyError(error)
    ? error
    : new IdempotencyError(ErrorCode.STORE_UNAVAILABLE, String(error), { cause: error });
}

/** A chunk of a recorded body: bytes, or text not yet encoded. */
type BodyChunk = Uint8Array | { text: string; encoding: BufferEncoding };

/**
 * Stored response: 4-byte length of the head (JSON status and headers), the head, the body of
 * `bodyBytes` bytes. Written into one buffer: no copy of the head or of the body on the way.
 */
export function encodeResponse(
  status: number,
  headers: [string, string][],
  chunks: readonly BodyChunk[],
  bodyBytes: number,
): Uint8Array {
  const head = JSON.stringify([status, headers]);
  const headBytes = Buffer.byteLength(head);
  const record = Buffer.allocUnsafe(4 + headBytes + bodyBytes);
  record.writeUInt32BE(headBytes, 0);
  let offset = 4 + record.write(head, 4);
  for (const chunk of chunks) {
    if (chunk instanceof Uint8Array) {
      record.set(chunk, offset);
      offset += chunk.length;
    } else {
      offset += record.write(chunk.text, offset, chunk.encoding);
    }
  }
  return record;
}

export function decodeResponse(payload: Uint8Array): HttpResponseData {
  const buffer = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const headLength = buffer.readUInt32BE(0);
  const [status, headers] = JSON.parse(buffer.subarray(4, 4 + headLength).toString()) as [number, [string, string][]];
  return { status, headers, body: buffer.subarray(4 + headLength) };
}
