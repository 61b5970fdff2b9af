import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { HttpResponseData } from '../../http/http-types.js';
import type { ResponseRecording } from '../../http/response-recording.js';
import { hasClientErrorStatus } from '../shared/client-errors.js';
import { groupHeaders } from '../shared/header-groups.js';
import { declaredLength } from '../shared/node-request.js';
import { setPassHeaders } from '../shared/pass-headers.js';
import { recordedReadable, recordedWebStream } from '../shared/recorded-stream.js';
import { type AdapterOptions, type RouteIdempotency, routeIdempotency } from '../shared/route-options.js';

/** The plugin's options; `route` defaults to the route's URL pattern (`/charges/:id`). */
export type FastifyIdempotencyOptions = AdapterOptions<FastifyRequest>;

/**
 * Per-route setting, in the route's `config.idempotency`: `false` turns Idem off for the route,
 * `true` (or leaving it out) uses the plugin's options, and an object overrides some of them
 * (all but the store) for this route only, such as `{ required: true }` or `{ policy: 'stripe' }`.
 * The same type as Nest's `@Idempotent({...})`.
 */
export type FastifyRouteIdempotency = RouteIdempotency;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Idem for this route: `false` off, `true` or absent the plugin's options, an object overrides them. */
    idempotency?: FastifyRouteIdempotency;
  }
}

/**
 * Fastify 5 plugin for the `Idempotency-Key` header. It is not encapsulated: it protects the
 * routes of the context it is registered in and of that context's children, so register it at
 * the root for the whole API or inside a plugin for that plugin's routes. Tune or turn it off
 * per route with `config: { idempotency: ... }`.
 *
 * The request body is the one Fastify's content-type parser produced; Fastify's own `bodyLimit`
 * (default 1 MiB) applies before Idem's `maxBodyBytes`. The response is recorded from the
 * `onSend` payload (string, Buffer, Node or web stream, `Response`), so register Idem before
 * plugins that rewrite the payload in `onSend`, such as compression: a replay then goes through
 * them again. A reply that is hijacked is not recorded; its key is kept until the lease ends.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { idempotency } from 'idem/fastify';
 * import { SqliteStore } from 'idem/sqlite';
 *
 * const app = Fastify();
 * await app.register(idempotency, { store: new SqliteStore() });
 * app.post('/charges', async (request, reply) => reply.code(201).send(await createCharge(request.body)));
 * app.post('/refunds', { config: { idempotency: { required: true } } }, async (request) => refund(request.body));
 * app.post('/webhooks', { config: { idempotency: false } }, async () => ({ ok: true }));
 * ```
 */
export const idempotency = Object.assign(
  async function idempotency(fastify: FastifyInstance, options: FastifyIdempotencyOptions): Promise<void> {
    // One HTTP layer per route setting object: Fastify copies `config` shallowly, so the object a
    // request sees is the one its route was declared with.
    const httpFor = routeIdempotency(options);
    const routeOf =
      options.route ?? ((request: FastifyRequest) => request.routeOptions.url ?? request.url.split('?')[0] ?? '/');
    const recordings = new WeakMap<FastifyRequest, ResponseRecording>();

    // Bad per-route options fail when the route is declared, not on its first request.
    fastify.addHook('onRoute', (route) => {
      httpFor(route.config?.idempotency);
    });

    fastify.addHook('preHandler', async function idempotencyPreHandler(request, reply) {
      const http = httpFor(request.routeOptions.config.idempotency);
      const header = (name: string) => request.headers[name];
      // A 404 from Fastify's not-found handler is no operation: no record for probes of unknown paths.
      if (http === undefined || request.is404 || !http.applies(request.method, header)) return;
      const decision = await http.begin({
        method: request.method,
        route: routeOf(request),
        url: request.url,
        header,
        body: request.body,
        bodyBytes: bodyBytesOf(request),
      });
      if (decision.action === 'respond') return send(reply, decision.response);
      if (decision.action === 'pass') {
        setPassHeaders(decision, (name, value) => reply.header(name, value));
        return;
      }
      const { recording } = decision;
      recordings.set(request, recording);
      reply.raw.once('close', () => recording.abandon());
    });

    fastify.addHook('onSend', async function idempotencyOnSend(request, reply, payload: unknown) {
      const recording = recordings.get(request);
      if (recording === undefined) return payload;
      recordings.delete(request);
      return recordPayload(recording, reply, payload);
    });

    // A thrown error with a 4xx status is an answer, recorded from what the error handler
    // sends. Any other thrown error is a failure: release before the 500 goes out, so a
    // retry runs again, whatever the policy.
    fastify.addHook('onError', async function idempotencyOnError(request, _reply, error) {
      const recording = recordings.get(request);
      if (recording === undefined || hasClientErrorStatus(error)) return;
      recordings.delete(request);
      await recording.abort();
    });
  },
  {
    // What fastify-plugin sets: hooks land in the registering context instead of a new one.
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: 'idem',
    [Symbol.for('plugin-meta')]: { name: 'idem', fastify: '5.x' },
  },
);

/**
 * Records the payload Fastify is about to send. Strings, Buffers and empty bodies are complete
 * here: they are stored before they are sent, so a client that got the answer and retries finds
 * it stored, and a handler that finishes after its client gave up still has its answer stored
 * for the retry. Streams are recorded as they flow, and their end waits for the store.
 */
async function recordPayload(recording: ResponseRecording, reply: FastifyReply, payload: unknown): Promise<unknown> {
  recording.headFrom(reply.statusCode, (name) => reply.getHeader(name));
  if (payload === undefined || payload === null || typeof payload === 'string' || payload instanceof Uint8Array) {
    if (payload !== undefined && payload !== null) recording.write(payload);
    await recording.finish();
    return payload;
  }
  if (typeof (payload as Readable).pipe === 'function') return recordedReadable(payload as Readable, recording);
  if (payload instanceof ReadableStream) return recordedWebStream(payload, recording);
  if (payload instanceof Response) {
    // Fastify takes the status and headers from a Response after onSend: record them as it will send them.
    const headers = [...Object.entries(reply.getHeaders()), ...payload.headers.entries()];
    recording.head(payload.status, headers);
    if (payload.body === null) {
      await recording.finish();
      return payload;
    }
    return new Response(recordedWebStream(payload.body, recording), {
      status: payload.status,
      statusText: payload.statusText,
      headers: payload.headers,
    });
  }
  // Fastify refuses any other payload with an error; nothing the handler answered is stored.
  await recording.abort();
  return payload;
}

function send(reply: FastifyReply, response: HttpResponseData): FastifyReply {
  reply.code(response.status);
  for (const [name, value] of groupHeaders(response.headers)) reply.header(name, value);
  const { body } = response;
  return reply.send(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
}

/** Content-Length, else the size of a body Fastify kept as text or bytes; unknown for a chunked JSON body. */
function bodyBytesOf(request: FastifyRequest): number | undefined {
  const declared = declaredLength(request.raw);
  if (declared !== undefined) return declared;
  if (typeof request.body === 'string') return Buffer.byteLength(request.body);
  if (request.body instanceof Uint8Array) return request.body.byteLength;
  return undefined;
}
