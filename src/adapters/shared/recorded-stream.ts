import { Readable } from 'node:stream';
import type { ResponseRecording } from '../../http/response-recording.js';

/*
 * A streamed response body is recorded one way on every adapter, Node streams and web streams
 * alike, and as `recordServerResponse` records writes on a Node response:
 *
 * - the client gets each chunk as the handler produces it; the end of the body waits until the
 *   response is stored, so a client that saw the whole response and retries at once finds it
 *   stored, not still in progress;
 * - a client that goes away mid-body cancels only its own copy: the handler's stream is read on
 *   to its end and the response stored, so the retry gets it (the heartbeat stops meanwhile, as
 *   for any client that left: a handler that never ends lets the lease run out);
 * - a handler stream that fails releases the key: the handler did not finish.
 *
 * What a slow client has not read yet is buffered: the handler's stream is read at its own pace
 * (a Node stream at the client's pace while the client is there).
 */

/**
 * Records a Node `Readable` body (Fastify's `onSend` payload, Koa's `ctx.body`) and returns the
 * stream to send in its place.
 */
export function recordedReadable(source: Readable, recording: ResponseRecording): Readable {
  let clientGone = false;
  let ended = false;
  const leave = () => {
    clientGone = true;
    recording.abandon();
    source.resume();
  };
  const client = new Readable({
    read() {
      source.resume();
    },
    destroy(error, callback) {
      // The framework destroys the body it sends when the client leaves: read the rest for the record.
      if (!ended) leave();
      callback(error);
    },
  });
  // A framework may also destroy the handler's own stream when the client leaves (Koa does, for
  // the body the handler set): that too only ends the client's copy until the body is recorded.
  const destroy = source.destroy;
  source.destroy = function destroyAfterRecorded(this: Readable, error?: Error) {
    if (error !== undefined || ended || this.readableEnded) return destroy.call(this, error);
    leave();
    return this;
  };
  source.on('data', (chunk: Buffer | string) => {
    recording.write(chunk);
    if (!clientGone && !client.push(chunk)) source.pause();
  });
  source.once('end', () => {
    recording.finish().then(
      () => {
        ended = true;
        if (!clientGone) client.push(null);
      },
      (error: unknown) => client.destroy(error as Error),
    );
  });
  source.once('error', (error) => {
    ended = true;
    void recording.abort();
    if (!clientGone) client.destroy(error);
  });
  return client;
}

/**
 * Records a web `ReadableStream` body (a `Response`'s body, a handler returning a web stream) and
 * returns the stream to send in its place. `onCancel` runs when the client cancels its copy.
 */
export function recordedWebStream<Chunk extends Uint8Array | string>(
  source: ReadableStream<Chunk>,
  recording: ResponseRecording,
): ReadableStream<Chunk> {
  const [toClient, toRecord] = source.tee();
  const recorded = record(toRecord, recording);
  const reader = toClient.getReader();
  return new ReadableStream<Chunk>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (!done) {
          controller.enqueue(value);
          return;
        }
        await recorded;
        controller.close();
      } catch (error) {
        controller.error(error);
      }
    },
    cancel(reason) {
      recording.abandon();
      return reader.cancel(reason);
    },
  });
}

/** Reads the recorded copy to its end; the client's copy flows on at its own pace. */
async function record(stream: ReadableStream<Uint8Array | string>, recording: ResponseRecording): Promise<void> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      recording.write(value);
    }
  } catch {
    // The body failed half way: the client got a broken response, so a retry must run again.
    await recording.abort();
    return;
  }
  await recording.finish();
}
