import { connect, type Socket } from 'node:net';

/** A client on a raw TCP connection: writes exactly the bytes given, and sees exactly what comes back. */
export class RawClient {
  readonly socket: Socket;
  #data = Buffer.alloc(0);
  #closed = false;
  readonly #waiters = new Set<() => void>();

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#data = Buffer.concat([this.#data, chunk]);
      this.#wake();
    });
    socket.on('error', () => {}); // a reset after the server answered is not the test's failure
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
  }

  /** Connects to the host and port of `url`. */
  static open(url: string): Promise<RawClient> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => {
        socket.off('error', reject);
        resolve(new RawClient(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Everything received so far, as Latin-1 text. */
  get text(): string {
    return this.#data.toString('latin1');
  }

  get closed(): boolean {
    return this.#closed;
  }

  write(bytes: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /** Resolves once `test` holds for what came back (checked on every arrival and on close); rejects after `timeoutMs`. */
  until(test: (client: RawClient) => boolean, what: string, timeoutMs = 5000): Promise<void> {
    if (test(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!test(this)) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`${what} within ${timeoutMs} ms; got ${JSON.stringify(this.text.slice(0, 600))}`));
      }, timeoutMs);
      this.#waiters.add(check);
    });
  }

  /** Resolves once the server closed the connection. */
  untilClosed(timeoutMs = 5000): Promise<void> {
    return this.until((client) => client.closed, 'the server did not close the connection', timeoutMs);
  }

  /** Resolves once `count` whole responses (head and Content-Length body) came back. */
  untilResponses(count: number, timeoutMs = 5000): Promise<void> {
    return this.until((client) => client.responses().length >= count, `no ${count} response(s)`, timeoutMs);
  }

  /** The complete responses received so far: status, lower-case headers, body (Content-Length framed only). */
  responses(): { status: number; headers: Record<string, string>; body: string }[] {
    const out: { status: number; headers: Record<string, string>; body: string }[] = [];
    let rest = this.text;
    for (;;) {
      const headEnd = rest.indexOf('\r\n\r\n');
      if (headEnd < 0) return out;
      const [statusLine = '', ...lines] = rest.slice(0, headEnd).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const length = Number(headers['content-length'] ?? 0);
      if (rest.length < headEnd + 4 + length) return out;
      out.push({
        status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0),
        headers,
        body: rest.slice(headEnd + 4, headEnd + 4 + length),
      });
      rest = rest.slice(headEnd + 4 + length);
    }
  }

  close(): void {
    this.socket.destroy();
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}
