import { ServerResponse } from 'node:http';
import type { ResponseRecording } from '../../http/response-recording.js';

/**
 * Records everything the handler writes on `res`, as it streams out, and stores it when the
 * handler ends the response. Every framework that writes to a Node `ServerResponse` (Express,
 * NestJS on Express, plain node:http, the gateway) is recorded by this one function.
 *
 * The end of the response waits for the store: a client that got the whole answer and retries
 * at once finds it stored, not still in progress.
 *
 * A client that disconnects before the handler ends does not release the key at once: the
 * handler is most likely still running, and a retry let in now would run it twice. The
 * heartbeat stops instead; if the handler then ends, its response is stored and the retry gets
 * it; if it never ends, the lease runs out and a retry may take over.
 */
export function recordServerResponse(res: ServerResponse, recording: ResponseRecording): void {
  res.on('close', abandonUnlessEnded); // 'close' comes once; on() spares once()'s wrapper
  const methods = prototypeMethods(res);
  if (methods !== undefined) {
    // The response's methods are its prototype's, which record when asked to: nothing is added
    // to the response itself.
    states.set(res, { recording, ...methods, headHeaders: [], ended: false });
    return;
  }
  // Own methods (another middleware's wrappers), or a plain Node response: shadow them with the
  // shared recording functions, which read their state from the response.
  const { writeHead, write, end } = res;
  (res as Recorded)[STATE] = { recording, writeHead, write, end, headHeaders: [], ended: false };
  res.writeHead = recordedWriteHead as ServerResponse['writeHead'];
  res.write = recordedWrite as ServerResponse['write'];
  res.end = recordedEnd as ServerResponse['end'];
}

type HeaderValue = string | number | readonly string[] | undefined;
interface RecordingState extends ResponseMethods {
  recording: ResponseRecording;
  /** Headers given to writeHead() never show in getHeaders(); kept here for the record. */
  headHeaders: [string, HeaderValue][];
  ended: boolean;
}
const STATE = Symbol('idem.recording');
type Recorded = ServerResponse & { [STATE]?: RecordingState };

/**
 * Recordings of responses whose prototype records (see `prototypeMethods`). A WeakMap,
 * not a property: Express gives every response its app's prototype, and V8 then pays several
 * microseconds for each property added to that response, more than all of Idem's other work.
 */
const states = new WeakMap<ServerResponse, RecordingState>();
/** A patched prototype's own methods, as they were before it was patched. */
const originals = new WeakMap<object, ResponseMethods>();
type ResponseMethods = Pick<ServerResponse, 'writeHead' | 'write' | 'end'>;

/**
 * The original methods when `res` can record through its prototype, else `undefined`. A
 * framework's per-app prototype (Express's `app.response`, which Nest on Express shares) gets
 * `writeHead`, `write` and `end` that record when a recording is registered for the response,
 * and pass straight through for any other. Node's own `ServerResponse.prototype` is never
 * touched: plain responses take own properties, which cost nothing there; so does a response
 * whose methods another middleware already wrapped.
 */
function prototypeMethods(res: ServerResponse): ResponseMethods | undefined {
  if (Object.hasOwn(res, 'writeHead') || Object.hasOwn(res, 'write') || Object.hasOwn(res, 'end')) return undefined;
  const prototype = Object.getPrototypeOf(res) as ServerResponse | null;
  if (prototype === null || prototype === ServerResponse.prototype) return undefined;
  const known = originals.get(prototype);
  if (known !== undefined) return known;
  if (Object.hasOwn(prototype, 'writeHead') || Object.hasOwn(prototype, 'write') || Object.hasOwn(prototype, 'end')) {
    return undefined; // a prototype with methods of its own: leave it as it is
  }
  return patchPrototype(prototype);
}

function patchPrototype(prototype: ServerResponse): ResponseMethods {
  const methods: ResponseMethods = { writeHead: prototype.writeHead, write: prototype.write, end: prototype.end };
  const writeHead = methods.writeHead as (...args: unknown[]) => ServerResponse;
  const write = methods.write as (...args: unknown[]) => boolean;
  const end = methods.end as (...args: unknown[]) => ServerResponse;
  const method = (value: unknown): PropertyDescriptor => ({ configurable: true, writable: true, value });
  Object.defineProperties(prototype, {
    writeHead: method(function writeHeadOrRecord(this: ServerResponse, ...args: unknown[]) {
      const state = states.get(this);
      return state === undefined
        ? writeHead.apply(this, args)
        : recordWriteHead(this, state, args[0], args[1], args[2]);
    }),
    write: method(function writeOrRecord(this: ServerResponse, ...args: unknown[]) {
      const state = states.get(this);
      return state === undefined ? write.apply(this, args) : recordWrite(this, state, args[0], args[1], args[2]);
    }),
    end: method(function endOrRecord(this: ServerResponse, ...args: unknown[]) {
      const state = states.get(this);
      return state === undefined ? end.apply(this, args) : recordEnd(this, state, args[0], args[1], args[2]);
    }),
  });
  originals.set(prototype, methods);
  return methods;
}

function stateOf(res: ServerResponse): RecordingState {
  return (res as Recorded)[STATE] ?? (states.get(res) as RecordingState);
}

/** True when Idem claimed the key of this response's request and records what is sent. */
export function isRecording(res: ServerResponse): boolean {
  return (res as Recorded)[STATE] !== undefined || states.has(res);
}

function capture(recording: ResponseRecording, chunk: unknown, encoding: unknown): void {
  if (typeof chunk === 'string') {
    // Node refuses an unknown encoding itself, right after this; the record never sees one.
    recording.write(chunk, typeof encoding === 'string' && Buffer.isEncoding(encoding) ? encoding : 'utf8');
  } else if (chunk instanceof Uint8Array) {
    recording.write(chunk);
  }
}

function recordedWriteHead(this: ServerResponse, status: unknown, reason?: unknown, headers?: unknown): ServerResponse {
  return recordWriteHead(this, stateOf(this), status, reason, headers);
}

function recordedWrite(this: ServerResponse, chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
  return recordWrite(this, stateOf(this), chunk, encoding, callback);
}

function recordedEnd(this: ServerResponse, chunk?: unknown, encoding?: unknown, callback?: unknown): ServerResponse {
  return recordEnd(this, stateOf(this), chunk, encoding, callback);
}

function recordWriteHead(
  res: ServerResponse,
  state: RecordingState,
  status: unknown,
  reason?: unknown,
  headers?: unknown,
): ServerResponse {
  const given = typeof reason === 'object' && reason !== null ? reason : headers;
  if (Array.isArray(given)) {
    // A flat [name, value, name, value] list, or [[name, value], ...].
    state.headHeaders = Array.isArray(given[0])
      ? (given as [string, string][])
      : given.flatMap((item, i) => (i % 2 === 0 ? [[String(item), given[i + 1] as string] as [string, string]] : []));
  } else if (typeof given === 'object' && given !== null) {
    state.headHeaders = Object.entries(given as Record<string, HeaderValue>);
  }
  return (state.writeHead as (...args: unknown[]) => ServerResponse).call(res, status, reason, headers);
}

function recordWrite(
  res: ServerResponse,
  state: RecordingState,
  chunk: unknown,
  encoding?: unknown,
  callback?: unknown,
): boolean {
  capture(state.recording, chunk, encoding);
  return (state.write as (...args: unknown[]) => boolean).call(res, chunk, encoding, callback);
}

function recordEnd(
  res: ServerResponse,
  state: RecordingState,
  chunk?: unknown,
  encoding?: unknown,
  callback?: unknown,
): ServerResponse {
  if (state.ended) return res;
  state.ended = true;
  capture(state.recording, chunk, encoding);
  if (state.headHeaders.length === 0) state.recording.headFrom(res.statusCode, (name) => res.getHeader(name));
  else {
    const headers = new Map<string, HeaderValue>(Object.entries(res.getHeaders()));
    for (const [name, value] of state.headHeaders) headers.set(name.toLowerCase(), value); // writeHead's win, as in Node
    state.recording.head(res.statusCode, headers);
  }
  // The answer goes out once the record is stored (or failed to be): `then` rather than
  // `finally`, which costs two more promises per response. Inline arrows, not a named const:
  // a named function made per response pays for its `name` under tsx/esbuild's keepNames.
  state.recording.finish().then(
    () => sendEnd(res, state, chunk, encoding, callback),
    (error: unknown) => {
      sendEnd(res, state, chunk, encoding, callback);
      throw error; // as `finally` would: a failing cache policy is not hidden
    },
  );
  return res;
}

/** Ends the response for real, with what the handler gave `end`. */
function sendEnd(
  res: ServerResponse,
  state: RecordingState,
  chunk: unknown,
  encoding: unknown,
  callback: unknown,
): void {
  (state.end as (...args: unknown[]) => ServerResponse).call(res, chunk, encoding, callback);
}

function abandonUnlessEnded(this: ServerResponse): void {
  const state = stateOf(this);
  if (!state.ended) state.recording.abandon();
}
