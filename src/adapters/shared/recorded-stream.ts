import { pipeline, type Readable, Transform } from 'node:stream';
import type { ResponseRecording } from '../../http/response-recording.js';

/**
 * A pass-through of a streamed response body that records each chunk as it flows to the client
 * and stores the response before the body ends. For adapters that see the body as a stream
 * (Fastify's `onSend` payload, Koa's `ctx.body`) rather than as writes on a `ServerResponse`.
 *
 * A body that fails releases the key: the handler did not finish. A body cut off by its consumer
 * (the client went away, the framework destroyed the stream) keeps the claim and stops the
 * heartbeat, as `recordServerResponse` does for a dropped connection.
 */
export function recordedReadable(source: Readable, recording: ResponseRecording): Readable {
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      recording.write(chunk);
      callback(null, chunk);
    },
    flush(callback) {
      // The end of the body waits for the store: a client that saw the whole response and
      // retries finds it stored, not still in progress.
      recording.finish().then(() => callback(), callback);
    },
  });
  pipeline(source, tap, (error) => {
    if (error === undefined || error === null) return;
    if ((error as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') recording.abandon();
    else void recording.abort();
  });
  return tap;
}

/** The same for a web `ReadableStream` body (a `Response`'s body, a handler returning a web stream). */
export function recordedWebStream<Chunk extends Uint8Array | string>(
  source: ReadableStream<Chunk>,
  recording: ResponseRecording,
): ReadableStream<Chunk> {
  const reader = source.getReader();
  return new ReadableStream<Chunk>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          await recording.finish();
          controller.close();
          return;
        }
        recording.write(value);
        controller.enqueue(value);
      } catch (error) {
        void recording.abort();
        controller.error(error);
      }
    },
    cancel(reason) {
      recording.abandon();
      return reader.cancel(reason);
    },
  });
}
