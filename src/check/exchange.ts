import type { ProbeOptions, ProbeResult } from './http-probe.js';
import { isReplayed } from './probe-answers.js';

/** The response headers an exchange keeps: the ones that tell a replay, a refusal or a created record. */
const HEADERS_THAT_MATTER = ['idempotent-replayed', 'retry-after', 'location', 'content-type'] as const;

/** Longest body an exchange keeps, in characters. */
const BODY_CHARS = 200;

/** One request a check sent and what came back, for the evidence of a scenario. */
export interface Exchange {
  /** The `Idempotency-Key` sent; `null` for none. */
  key: string | null;
  /** True when the request carried another body than the target's (the reused-key scenario). */
  otherBody: boolean;
  /** The status answered; `null` when there was no answer (or it was dropped before it was read). */
  status: number | null;
  /** True for an answer marked `Idempotent-Replayed: true`. */
  replayed: boolean;
  /** Why there was no answer: a timeout, a reset, or the checker's own drop. */
  error?: string;
  /** True when the checker dropped the connection on purpose. */
  dropped?: boolean;
  /** The response headers that matter: `idempotent-replayed`, `retry-after`, `location`, `content-type`. */
  headers: Record<string, string>;
  /** The start of the response body, as text (200 characters at most). */
  body: string;
  /** From sending to the answer, in ms. */
  ms: number;
}

/** What is kept of one probe, for the evidence. */
export function exchangeOf(options: Omit<ProbeOptions, 'timeoutMs'>, answer: ProbeResult): Exchange {
  const base = {
    key: options.key ?? null,
    otherBody: options.body !== undefined,
    ms: Math.round(answer.ms),
  };
  if (!answer.ok) {
    return {
      ...base,
      status: answer.status ?? null,
      replayed: false,
      error: answer.error,
      dropped: answer.dropped,
      headers: {},
      body: '',
    };
  }
  const headers: Record<string, string> = {};
  for (const name of HEADERS_THAT_MATTER) {
    const value = answer.headers[name];
    if (value !== undefined) headers[name] = String(value);
  }
  const text = answer.body.toString('utf8');
  return {
    ...base,
    status: answer.status,
    replayed: isReplayed(answer),
    headers,
    body: text.length > BODY_CHARS ? `${text.slice(0, BODY_CHARS)}...` : text,
  };
}
