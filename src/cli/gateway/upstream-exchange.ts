import type { Agent, ClientRequest, request as httpRequest, IncomingMessage, ServerResponse } from 'node:http';
import { hasBody } from '../../adapters/shared/node-request.js';
import { endWithBody } from '../../adapters/shared/node-response.js';
import type { IdempotencyError } from '../../core/errors.js';
import type { ResponseRecording } from '../../http/response-recording.js';
import { copyResponseHead, type ForwardedBody, upstreamRequestHeaders, writeResponseHead } from './forward-headers.js';
import {
  answerProblem,
  shuttingDown,
  upstreamBrokeOff,
  upstreamTimeout,
  upstreamUnavailable,
} from './gateway-problems.js';

/** Most of an upstream response held back to go out in one write with its head, in bytes. */
const HOLD_BYTES = 64 * 1024;

/**
 * Where an exchange with the upstream stands. Each rule of the gateway hangs on one of these:
 * what a failure does to the key, what the client is told, what shutdown does.
 */
export const ExchangeState = {
  /**
   * The request is on its way; no response head yet. A failure here (refused, reset, timeout,
   * shutdown) releases the key before the client hears of it: the upstream never answered, so a
   * retry runs again.
   */
  sending: 'sending',
  /**
   * The head came; the body is arriving, held back (up to `HOLD_BYTES`, one turn of the event
   * loop) then streamed to the client. The upstream has acted: a break from here on never
   * releases a key whose status the policy stores (see `notStored`).
   */
  streaming: 'streaming',
  /**
   * The body ended; the response is being stored (or its key released, as the policy says)
   * before the client's last byte goes out, so a client that retries the moment it has the answer
   * finds the replay. Shutdown waits for this (the store call has its own timeout).
   */
  storing: 'storing',
  /** Over: the client got the whole response (a client that left gets nothing, and it is stored all the same). */
  answered: 'answered',
  /** Over: the upstream never answered; the key was released and the client got 502, 504 or 503. */
  released: 'released',
  /**
   * Over: the upstream broke off after its head. Its response cannot be replayed and the work may
   * have been done, so the key is completed as "not stored": retries get 410
   * response-not-stored, not a second run. The client is cut off, or gets 502 if nothing went out.
   */
  notStored: 'not_stored',
} as const;
export type ExchangeState = (typeof ExchangeState)[keyof typeof ExchangeState];

/** How to reach the upstream; one per gateway. */
export interface UpstreamLink {
  /** The upstream's URL; its `host` is sent as `Host`. */
  url: URL;
  request: typeof httpRequest;
  /**
   * A keep-alive agent whose `timeout` option is `timeoutMs`: its sockets time out on silence and
   * the request hears of it (`'timeout'`). See `upstreamAgent`.
   */
  agent: Agent;
  /** Longest silence from the upstream (before its head, or between two chunks), in ms. */
  timeoutMs: number;
}

/** One request to forward. */
export interface ExchangeInput {
  req: IncomingMessage;
  res: ServerResponse;
  /** The path and query to send, base path included (see `forwardPath`). */
  path: string;
  /** The body read whole, or `'stream'` to pipe `req` through as it arrives. */
  body: ForwardedBody;
  /** Present when the key was claimed: the response is recorded and stored or released. */
  recording?: ResponseRecording;
}

/** How an exchange ended, for the metrics. */
export interface ExchangeEnd {
  /** The upstream failed: refused, reset, timed out, or broke off. */
  failed: boolean;
  /** From forwarding to the end of the upstream response (or its failure), in ms. */
  ms: number;
}

/**
 * One request forwarded to the upstream and its response streamed back, through the recording
 * when the key was claimed. The state (`ExchangeState`) is the one place that says what a
 * failure, a client that leaves, or shutdown does at each step.
 */
export class UpstreamExchange {
  #state: ExchangeState = ExchangeState.sending;
  readonly #link: UpstreamLink;
  readonly #input: ExchangeInput;
  readonly #recording: ResponseRecording | undefined;
  readonly #started = performance.now();
  #upstreamReq: ClientRequest | undefined;
  #upstreamRes: IncomingMessage | undefined;
  /** Chunks held back to go out with the head; `undefined` once the body streams. */
  #held: Buffer[] | undefined;
  #heldBytes = 0;
  #holding: NodeJS.Immediate | undefined;
  #timedOut = false;
  #cancelled = false;
  /** The client left before its response ended: nothing more is written to it. */
  #clientGone = false;
  /** Told once, when the exchange is over. */
  readonly #onOver: (end: ExchangeEnd) => void;
  #over = false;
  /** Shutdown waiting for the exchange to be over (rare: no promise for every request). */
  #overWaiters: (() => void)[] | undefined;

  /** `onOver` is called once the exchange is over, whatever its end. */
  constructor(link: UpstreamLink, input: ExchangeInput, onOver: (end: ExchangeEnd) => void) {
    this.#link = link;
    this.#input = input;
    this.#recording = input.recording;
    // Held only while recording: the head may still change (see `#flushHeld`).
    if (input.recording !== undefined) this.#held = [];
    this.#onOver = onOver;
  }

  get state(): ExchangeState {
    return this.#state;
  }

  /** Sends the request; `onOver` says when the exchange is over. Never throws. */
  run(): void {
    const { req, res, body } = this.#input;
    const link = this.#link;
    let upstreamReq: ClientRequest;
    try {
      upstreamReq = link.request({
        protocol: link.url.protocol,
        hostname: link.url.hostname,
        port: link.url.port,
        method: req.method,
        path: this.#input.path,
        headers: upstreamRequestHeaders(req, link.url.host, body),
        agent: link.agent,
      });
    } catch (error) {
      // A request Node will not send (a header it refuses): as if the upstream never answered, so
      // the key is released rather than held by a heartbeat that nobody stops.
      void this.#fail(error);
      return;
    }
    this.#upstreamReq = upstreamReq;
    // The agent's sockets carry the timeout (see `UpstreamLink.agent`): no timer set and cleared
    // per request, as `setTimeout` on the request would.
    upstreamReq.on('timeout', () => {
      this.#timedOut = true;
      upstreamReq.destroy(new Error(`no answer within ${link.timeoutMs} ms`));
    });
    upstreamReq.on('error', (error) => void this.#fail(error));
    upstreamReq.on('response', (upstreamRes) => this.#onHead(upstreamRes));
    res.once('close', () => this.#onClientClose());
    if (body !== 'stream') endWithBody(upstreamReq, body);
    else if (!hasBody(req))
      upstreamReq.end(); // Node drains what is left of `req` once `res` ends
    else streamBody(req, upstreamReq);
  }

  /**
   * Shutdown after the grace period: cuts the exchange off where it stands (see `ExchangeState`)
   * and resolves once it is over. A response being stored is left to finish: cutting it off
   * would tell the client its key was released when it was stored.
   */
  async cancel(): Promise<void> {
    this.#cancelled = true;
    if (this.#state === ExchangeState.sending || this.#state === ExchangeState.streaming) {
      const failing = this.#fail(new Error('the gateway is shutting down'));
      this.#upstreamReq?.destroy();
      await failing;
    }
    if (this.#over) return;
    const waiters = this.#overWaiters ?? [];
    this.#overWaiters = waiters;
    await new Promise<void>((resolve) => waiters.push(resolve));
  }

  #onHead(upstreamRes: IncomingMessage): void {
    if (this.#state !== ExchangeState.sending) {
      upstreamRes.resume(); // cut off before the head came
      return;
    }
    this.#state = ExchangeState.streaming;
    this.#upstreamRes = upstreamRes;
    // Without a key nothing is stored first: the head is written whole with the first chunk (or
    // the end), and the body streams as it comes (see `#writeHead`).
    if (this.#recording !== undefined) copyResponseHead(upstreamRes, this.#input.res);
    upstreamRes.on('data', (chunk: Buffer) => this.#onData(chunk));
    upstreamRes.on('end', () => void this.#onEnd());
    upstreamRes.on('error', (error) => void this.#fail(error));
  }

  #onData(chunk: Buffer): void {
    if (this.#state !== ExchangeState.streaming) return;
    // A response that arrives whole within one turn of the event loop (most do) is held and sent
    // in one write with its head; one still arriving after that turn, or larger than
    // HOLD_BYTES, streams from then on.
    if (this.#held !== undefined && this.#heldBytes + chunk.length <= HOLD_BYTES) {
      this.#held.push(chunk);
      this.#heldBytes += chunk.length;
      this.#holding ??= setImmediate(() => this.#flushHeld());
      return;
    }
    this.#flushHeld();
    this.#forward(chunk);
  }

  /** Stops holding: sends what was held, and streams from now on. */
  #flushHeld(): void {
    if (this.#held === undefined || this.#state !== ExchangeState.streaming) return;
    clearImmediate(this.#holding);
    const chunks = this.#held;
    this.#held = undefined;
    // Chunked, not Content-Length, while recording: the client must not see the response as
    // complete before the key is stored or released (see #onEnd).
    if (this.#recording !== undefined && !this.#input.res.headersSent) this.#input.res.removeHeader('content-length');
    for (const chunk of chunks) this.#forward(chunk);
  }

  /** One chunk to the recording and to the client, with backpressure from the client. */
  #forward(chunk: Buffer): void {
    this.#recording?.write(chunk);
    if (this.#clientGone) return;
    const { res } = this.#input;
    const upstreamRes = this.#upstreamRes as IncomingMessage;
    this.#writeHead();
    if (!res.write(chunk) && !res.destroyed) {
      upstreamRes.pause();
      res.once('drain', () => upstreamRes.resume());
    }
  }

  /**
   * Without a key: writes the upstream's head, once, in one call (no header set one by one).
   * Written as late as the first chunk, so that a response that breaks off before any of its body
   * still gets a problem answer (502) rather than a cut-off.
   */
  #writeHead(): void {
    const { res } = this.#input;
    if (this.#recording === undefined && !res.headersSent) writeResponseHead(this.#upstreamRes as IncomingMessage, res);
  }

  async #onEnd(): Promise<void> {
    if (this.#state !== ExchangeState.streaming) return;
    this.#state = ExchangeState.storing;
    const whole = this.#takeHeld();
    const recording = this.#recording;
    if (recording !== undefined) {
      // Store (or release) before the body or its final chunk goes out. A held body is recorded
      // here, as it has not been written yet.
      const { res } = this.#input;
      if (whole !== undefined) recording.write(whole);
      recording.headFrom(res.statusCode, (name) => res.getHeader(name));
      await recording.finish();
    }
    this.#state = ExchangeState.answered;
    this.#endClient(whole);
    this.#finish(false);
  }

  /** Stops holding and returns the held body as one buffer; `undefined` when it was streamed. */
  #takeHeld(): Buffer | undefined {
    clearImmediate(this.#holding);
    const held = this.#held;
    this.#held = undefined;
    if (held === undefined) return undefined;
    return held.length === 1 ? (held[0] as Buffer) : Buffer.concat(held);
  }

  /** Ends the client's response, with the held body and its Content-Length when there is one. */
  #endClient(whole: Buffer | undefined): void {
    const { res } = this.#input;
    if (this.#clientGone || res.destroyed || res.writableEnded) return;
    this.#writeHead();
    if (whole === undefined || whole.length === 0) {
      res.end();
      return;
    }
    if (!res.headersSent) res.setHeader('content-length', whole.length);
    endWithBody(res, whole);
  }

  /**
   * The upstream failed, or shutdown cut the exchange off: what happens depends on whether the
   * head came (see `ExchangeState`). The key is settled before the client hears anything.
   */
  async #fail(error: unknown): Promise<void> {
    const { res } = this.#input;
    const recording = this.#recording;
    const keyed = recording !== undefined;
    if (this.#state === ExchangeState.sending) {
      this.#state = ExchangeState.released;
      await recording?.abort();
      if (!this.#clientGone) {
        answerProblem(
          res,
          this.#cancelled
            ? shuttingDown(keyed)
            : this.#timedOut
              ? upstreamTimeout(this.#link.timeoutMs, keyed)
              : upstreamUnavailable(this.#link.url, error, keyed),
        );
      }
      this.#finish(this.#upstreamFailed());
      return;
    }
    if (this.#state !== ExchangeState.streaming) return; // over already, or being stored
    this.#state = ExchangeState.notStored;
    clearImmediate(this.#holding);
    this.#upstreamRes?.resume();
    if (recording !== undefined) await this.#recordNotStored(recording);
    if (!this.#clientGone) answerProblem(res, this.#brokeOff());
    this.#finish(this.#upstreamFailed());
  }

  /** Whether the exchange failed through the upstream's fault, not the client's or shutdown's. */
  #upstreamFailed(): boolean {
    return !this.#cancelled && !(this.#clientGone && this.#recording === undefined);
  }

  #brokeOff(): IdempotencyError {
    return upstreamBrokeOff(this.#input.res.statusCode, this.#brokeOffReason(), this.#recording !== undefined);
  }

  #brokeOffReason(): string {
    return this.#cancelled
      ? 'the gateway shut down'
      : this.#timedOut
        ? `it sent nothing for ${this.#link.timeoutMs} ms`
        : 'the connection broke';
  }

  /**
   * Completes the key as "not stored" (retries get 410 response-not-stored, saying why) for a
   * status the policy stores, and releases it for one it does not.
   */
  async #recordNotStored(recording: ResponseRecording): Promise<void> {
    const { res } = this.#input;
    recording.headFrom(res.statusCode, (name) => res.getHeader(name));
    await recording.notStored(`the upstream response broke off mid-body: ${this.#brokeOffReason()}`);
  }

  /**
   * The client left before its response ended. A protected exchange goes on (the heartbeat keeps
   * the lease) so that its response is stored for the retry: letting the lease lapse while the
   * upstream still works would let a retry run it a second time. An unprotected one is cut off:
   * nobody will replay it.
   */
  #onClientClose(): void {
    if (this.#input.res.writableFinished) return;
    this.#clientGone = true;
    if (this.#recording === undefined) {
      if (this.#state === ExchangeState.sending || this.#state === ExchangeState.streaming) {
        void this.#fail(new Error('the client left'));
        this.#upstreamReq?.destroy();
      }
      return;
    }
    this.#upstreamRes?.resume(); // no client to wait for: keep reading, so the response is recorded
  }

  #finish(failed: boolean): void {
    if (this.#over) return;
    this.#over = true;
    this.#onOver({ failed, ms: performance.now() - this.#started });
    if (this.#overWaiters !== undefined) for (const wake of this.#overWaiters) wake();
  }
}

/**
 * Streams a request body to the upstream as it arrives, with backpressure: what `pipe` does, with
 * two listeners instead of pipe's eight on every request. Once the upstream request is destroyed
 * (the exchange failed or was cut off), the rest of the body is read and dropped.
 */
function streamBody(req: IncomingMessage, upstreamReq: ClientRequest): void {
  req.on('data', (chunk: Buffer) => {
    if (upstreamReq.destroyed) return;
    if (!upstreamReq.write(chunk)) {
      // Resumed once the upstream drains, or once it is gone (then the rest is dropped).
      req.pause();
      const resume = () => {
        upstreamReq.off('drain', resume);
        upstreamReq.off('close', resume);
        req.resume();
      };
      upstreamReq.once('drain', resume);
      upstreamReq.once('close', resume);
    }
  });
  req.on('end', () => {
    if (!upstreamReq.destroyed) upstreamReq.end();
  });
}
