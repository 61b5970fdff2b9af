/**
 * Shares socket writes between the commands of concurrent callers on the store's own client.
 * Sending a command costs this process mostly its own write to the socket; when commands are
 * issued while others are still waiting for their replies, the socket is corked until the event
 * loop's check phase (setImmediate), so every command issued in the meantime leaves in one
 * write. Each command is still sent, answered, timed out and retried on its own: nothing about a
 * script's atomicity changes, only how its bytes reach the socket. A lone caller (nothing in
 * flight) writes at once and waits for nothing.
 */
import type { Duplex } from 'node:stream';

/** The part of an ioredis client this needs: its current socket (replaced on every reconnection). */
export interface HasStream {
  readonly stream: Duplex | undefined;
}

export class CorkedWrites {
  readonly #redis: HasStream;
  /** Commands sent and not yet answered. */
  #inFlight = 0;
  /** The socket corked until the next check phase, if any. */
  #corked: Duplex | undefined;

  constructor(redis: HasStream) {
    this.#redis = redis;
  }

  /** Runs `issue` (which sends one command at once and returns its reply), corked when others are in flight. */
  send<T>(issue: () => Promise<T>): Promise<T> {
    if (this.#inFlight > 0) this.#cork();
    this.#inFlight++;
    return issue().then(
      (reply) => {
        this.#inFlight--;
        return reply;
      },
      (error: unknown) => {
        this.#inFlight--;
        throw error;
      },
    );
  }

  #cork(): void {
    if (this.#corked !== undefined) return;
    const stream = this.#redis.stream;
    if (stream === undefined || !stream.writable) return;
    stream.cork();
    this.#corked = stream;
    setImmediate(() => {
      this.#corked = undefined;
      stream.uncork();
    });
  }
}
