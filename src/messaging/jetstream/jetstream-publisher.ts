/**
 * The outbox relay's NATS JetStream publisher: each message is published to its topic (a subject)
 * with its outbox id as `Nats-Msg-Id`. JetStream keeps the ids it saw within the stream's
 * duplicate window and stores a second copy of an id (a relay that died before marking publishes
 * again) not at all: its PubAck says `duplicate`, which counts as published.
 */
import { ErrorCode, IdempotencyError } from '../../core/errors.js';
import type { OutboxPublisher, PendingMessage, PublishResult } from '../outbox/outbox.js';

/** The part of a NATS `MsgHdrs` the publisher writes. */
export interface NatsHeadersLike {
  set(key: string, value: string): void;
}

/** The publish options this publisher passes (a subset of `JetStreamPublishOptions`; it always sets `msgID`). */
export interface JetStreamPublishOptionsLike {
  msgID?: string;
  timeout?: number;
  headers?: NatsHeadersLike;
}

/** The part of a JetStream client (`jetstream(nc)` from `@nats-io/jetstream`) the publisher uses. */
export interface JetStreamLike {
  publish(
    subject: string,
    payload: Uint8Array,
    options?: JetStreamPublishOptionsLike,
  ): Promise<{ stream: string; seq: number; duplicate: boolean }>;
}

export interface JetStreamPublisherOptions {
  /** The JetStream client: `jetstream(nc)`. The publisher does not close its connection. */
  js: JetStreamLike;
  /**
   * The `headers` function of `@nats-io/transport-node` (or `@nats-io/nats-core`), which makes a
   * `MsgHdrs`. Needed only for messages with headers: without it such a message fails (and is
   * retried, then dead-lettered) with an error that says to pass it. Idem does not import NATS.
   */
  headers?: () => NatsHeadersLike;
  /** How long to wait for one message's PubAck, in ms (1 to 2^31 - 1). Default: the client's timeout (5,000 for `jetstream(nc)`). */
  timeoutMs?: number;
}

/**
 * Publishes outbox messages to JetStream with `Nats-Msg-Id` set to the outbox id; one result per
 * message once its PubAck arrived (a `duplicate` PubAck counts as published). The messages of one
 * batch are published together: the outbox hands out at most one message per ordering key in a
 * batch, so no key's order depends on the order of their acks.
 *
 * @example
 * ```ts
 * const nc = await connect({ servers: 'localhost:4222' });
 * const publisher = jetstreamPublisher({ js: jetstream(nc), headers });
 * const relay = new OutboxRelay({ outbox, publisher }).start();
 * ```
 */
export function jetstreamPublisher(options: JetStreamPublisherOptions): OutboxPublisher {
  const { js, headers, timeoutMs } = options ?? ({} as Partial<JetStreamPublisherOptions>);
  // Refused now: without a client, or with no time for a PubAck, every message would fail and the
  // relay would move them all to the dead-letter state.
  if (typeof js?.publish !== 'function') {
    throw misuse('jetstreamPublisher needs a JetStream client: js: jetstream(nc).');
  }
  if (timeoutMs !== undefined && !(Number.isSafeInteger(timeoutMs) && timeoutMs >= 1 && timeoutMs <= 2 ** 31 - 1)) {
    throw misuse(`timeoutMs must be a whole number of ms from 1 to ${2 ** 31 - 1}, got ${String(timeoutMs)}.`);
  }
  if (headers !== undefined && typeof headers !== 'function') {
    throw misuse('headers must be the headers function of @nats-io/transport-node.');
  }
  const publishOne = async (message: PendingMessage): Promise<PublishResult> => {
    const publishOptions: JetStreamPublishOptionsLike = { msgID: message.id };
    if (timeoutMs !== undefined) publishOptions.timeout = timeoutMs;
    try {
      const block = headersOf(message, headers);
      if (block !== undefined) publishOptions.headers = block;
      // A `duplicate` ack means JetStream holds this id already: the message is there once.
      await js.publish(message.topic, message.payload, publishOptions);
      return { ok: true };
    } catch (error) {
      return { ok: false, error: `not published to ${message.topic}: ${reasonOf(error)}` };
    }
  };
  return {
    name: 'jetstream',
    async publish(messages) {
      return await Promise.all(messages.map(publishOne));
    },
  };
}

/** The message's headers as NATS headers; undefined when it has none. Throws for a name or value NATS cannot carry. */
function headersOf(message: PendingMessage, headers: (() => NatsHeadersLike) | undefined): NatsHeadersLike | undefined {
  const names = Object.keys(message.headers);
  if (names.length === 0) return undefined;
  if (headers === undefined) {
    throw new Error(
      '[idem] [jetstream] this message has headers: pass jetstreamPublisher({ js, headers }) with headers from @nats-io/transport-node',
    );
  }
  const block = headers();
  for (const name of names) block.set(name, message.headers[name] ?? '');
  return block;
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function misuse(message: string): IdempotencyError {
  return new IdempotencyError(ErrorCode.INVALID_OPTIONS, `[idem] [jetstream publisher] ${message}`);
}
