/**
 * `Notifier`: sends a notification at most once per recipient, event and channel within a window,
 * on the engine. The notification's record is claimed (one sender wins), the send runs under its
 * lease, and the record completes with what was sent: it is both the dedupe record and the send
 * log. A duplicate finds it completed (or in progress) and is suppressed.
 */
import { randomUUID } from 'node:crypto';
import { type Decision, Engine, type EngineOptions, type Lease } from '../core/engine.js';
import { ErrorCode, IdempotencyError, isIdempotencyError } from '../core/errors.js';
import { isJournalStore, type JournalStore } from '../core/journal.js';
import type { EncryptionKeys } from '../core/keyring.js';
import { OutcomeKind } from '../core/outcome.js';
import type { Store } from '../core/store.js';
import { messageIdOf, notificationKeyOf, suppressionKeyOf } from './keys.js';
import { type LogPage, type LogQuery, readLog } from './log.js';
import {
  decodeLogEntry,
  decodeReceipt,
  encodeLogEntry,
  encodeReceipt,
  type NotificationLogEntry,
} from './log-entry.js';
import type { Delivery, NotifyInput, NotifyResult, SendFunction, SendReceipt, SuppressedBecause } from './types.js';

/** "Forever": 100 years, the default window. A record must expire some day; nobody waits a century for a resend. */
export const FOREVER_MS = 100 * 365 * 24 * 60 * 60 * 1000;
/** How long the log keeps a suppressed duplicate, by default: 30 days. */
export const DEFAULT_SUPPRESSION_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;
/** Every notification record has this fingerprint: the key already names recipient, event and channel. */
const FINGERPRINT = 'idem:notify';

export interface NotifierOptions {
  /** Where notifications are recorded: a store that keeps journals (SQLite, PostgreSQL, Redis, MySQL, memory). */
  store: Store;
  /** How long a sent notification is not sent again, from its send, in ms. Default `FOREVER_MS` (100 years). */
  windowMs?: number;
  /**
   * How long a sender holds a notification before another may take it over (it died mid-send),
   * in ms; a heartbeat extends it while the send runs. Default 30,000.
   */
  leaseMs?: number;
  /** When another caller is sending the same notification, wait up to this long (ms) for it. Default 0: suppress at once. */
  waitMs?: number;
  /**
   * What a caller gets when the notification is being sent by another caller (after `waitMs`):
   * `suppress` answers `suppressed` (reason `in_progress`); `throw` throws `IN_PROGRESS` (with
   * `retryAfterMs`), for callers that retry, such as a workflow step: if the other sender dies
   * mid-send, the retry takes the notification over and sends it. Default `suppress`.
   */
  inProgress?: 'suppress' | 'throw';
  /** The domain of the stable email `Message-ID`s: `<key@domain>`. Default `idem`. */
  messageIdDomain?: string;
  /** Record each suppressed duplicate in the log (one small record each, best effort). Default true. */
  logSuppressed?: boolean;
  /** How long a suppression stays in the log, in ms. Default 30 days. */
  suppressionRetentionMs?: number;
  /** Called when a suppression could not be logged (the notification's answer is not affected). Default: ignored. */
  onLogError?: (error: unknown) => void;
  /** Seals the log entries (recipients included) with AES-256-GCM (see `EngineOptions.encryptionKey`). */
  encryptionKey?: EncryptionKeys;
  /** Spans and metrics of the notifications' claims (see `EngineOptions.telemetry`). Default none. */
  telemetry?: EngineOptions['telemetry'];
  /** Called with each claim, completion, release and store error (see `EngineOptions.onEvent`). Default none. */
  onEvent?: EngineOptions['onEvent'];
  /** A store call that takes longer fails with `STORE_UNAVAILABLE`, in ms. Default 5,000. */
  storeTimeoutMs?: number;
  /** The clock, in ms since the epoch. Default `Date.now`. */
  now?: () => number;
}

/** One notification, made plain: its name, its send, and which errors are final. */
interface Plan {
  recipient: string;
  event: string;
  channel: string;
  send: SendFunction;
  isFinal: (error: unknown) => boolean;
  key: string;
  override: { reason: string; id: string } | undefined;
}

/**
 * Sends notifications at most once per recipient, event and channel within a window.
 *
 * @example
 * ```ts
 * const notifier = new Notifier({ store: new SqliteStore({ path: 'idem.db' }) });
 * const email = emailChannel(transport, { from: 'shop@example.com' });
 * await notifier.notify({ recipient: 'ann@example.com', event: `shipped:${orderId}`, channel: email,
 *   message: { subject: 'Your order shipped', text: '...' } });
 * ```
 */
export class Notifier {
  /** The store notifications are recorded in. */
  readonly store: JournalStore;
  readonly #options: NotifierOptions;
  readonly #engines = new Map<number, Engine>();
  readonly #suppressions: Engine;
  readonly #domain: string;

  constructor(options: NotifierOptions) {
    if (options?.store === undefined || !isJournalStore(options.store)) {
      throw new IdempotencyError(
        ErrorCode.INVALID_OPTIONS,
        `[idem] notify: the ${options?.store?.name ?? 'given'} store keeps no journals, which the notification log needs: use SQLite, PostgreSQL, Redis, MySQL or memory.`,
      );
    }
    this.store = options.store;
    this.#options = options;
    this.#domain = options.messageIdDomain ?? 'idem';
    this.#engineFor(options.windowMs ?? FOREVER_MS);
    this.#suppressions = this.#makeEngine(options.suppressionRetentionMs ?? DEFAULT_SUPPRESSION_RETENTION_MS, 0);
  }

  /** Sends the notification unless it was sent within its window; a resend only with `override`. */
  async notify<M>(input: NotifyInput<M>): Promise<NotifyResult> {
    const plan = planOf(input);
    const engine = this.#engineFor(input.windowMs ?? this.#options.windowMs ?? FOREVER_MS);
    const decision = await engine.begin({
      key: plan.key,
      fingerprint: FINGERPRINT,
      waitMs: input.waitMs ?? this.#options.waitMs ?? 0,
    });
    if (decision.kind === 'run') return this.#send(engine, decision.lease, plan);
    if (decision.kind === 'in_progress' && (input.inProgress ?? this.#options.inProgress) === 'throw') {
      throw new IdempotencyError(
        ErrorCode.IN_PROGRESS,
        `[idem] notify: ${plan.channel} notification ${plan.event} is being sent by another caller; retry after ${decision.retryAfterMs} ms (if that sender died, the retry sends it).`,
        { key: plan.key, retryAfterMs: decision.retryAfterMs },
      );
    }
    return this.#suppress(engine, plan, decision);
  }

  /** A page of the log: what was sent, failed, or suppressed, in time order within the page (see `LogQuery`). */
  log(query: LogQuery = {}): Promise<LogPage> {
    return readLog(this.#engineFor(this.#options.windowMs ?? FOREVER_MS), this.store, query);
  }

  async #send(engine: Engine, lease: Lease, plan: Plan): Promise<NotifyResult> {
    const delivery: Delivery = {
      recipient: plan.recipient,
      event: plan.event,
      channel: plan.channel,
      idempotencyKey: plan.key,
      messageId: messageIdOf(plan.key, this.#domain),
      attempt: lease.attempts,
      ...(plan.override === undefined ? {} : { override: plan.override }),
    };
    // A takeover: the sender before may have died after recording its send and before completing.
    const recorded = lease.attempts > 1 ? await this.#recordedSend(engine, lease) : undefined;
    if (recorded !== undefined) {
      await this.#finish(engine, lease, recorded);
      return sentResult(recorded);
    }
    let receipt: unknown;
    try {
      receipt = await plan.send(delivery);
    } catch (error) {
      await this.#failed(engine, lease, plan, error);
      throw error;
    }
    const entry = this.#entry(plan, 'sent', {
      messageId: reportedId(receipt) ?? delivery.messageId,
      attempt: lease.attempts,
    });
    await this.#finish(engine, lease, entry);
    return sentResult(entry);
  }

  /** Records the ended send as the journal's entry 0, then completes with it; a lost lease leaves it to the new holder. */
  async #finish(engine: Engine, lease: Lease, entry: NotificationLogEntry): Promise<void> {
    const data = encodeLogEntry(engine.codec, lease.key, entry);
    const appended = await engine.call('append', () =>
      this.store.append({ key: lease.key, token: lease.token, seq: 0, data, nowMs: engine.now() }),
    );
    if (!appended) return;
    try {
      await lease.complete({ kind: OutcomeKind.value, payload: encodeReceipt(entry) });
    } catch (error) {
      // Sent, and recorded in the journal: a holder that took the record over finds it there and does not send.
      if (!isIdempotencyError(error, ErrorCode.LEASE_LOST)) throw error;
    }
  }

  /** A send that threw: a final error is recorded (no resend in the window); any other releases the key for a retry. */
  async #failed(engine: Engine, lease: Lease, plan: Plan, error: unknown): Promise<void> {
    if (!plan.isFinal(error)) {
      // The send's error is what the caller needs; a release that fails leaves the lease to run out.
      await lease.release().catch(() => {});
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    await this.#finish(engine, lease, this.#entry(plan, 'failed', { attempt: lease.attempts, error: message }));
  }

  /** The send the journal holds for this life of the record, if its sender recorded it. */
  async #recordedSend(engine: Engine, lease: Lease): Promise<NotificationLogEntry | undefined> {
    const journal = await engine.call('entries', () => this.store.entries(lease.key));
    const first = journal[0];
    if (first === undefined || first.atMs < lease.createdAtMs) return undefined;
    return decodeLogEntry(engine.codec, lease.key, first);
  }

  async #suppress(engine: Engine, plan: Plan, decision: Exclude<Decision, { kind: 'run' }>): Promise<NotifyResult> {
    let because: SuppressedBecause = 'in_progress';
    let original: NotificationLogEntry | undefined;
    if (decision.kind === 'replay') {
      original = decodeReceipt(decision.outcome.payload);
      because = original?.kind === 'failed' ? 'failed' : 'duplicate';
    } else if (decision.kind === 'mismatch') {
      // Only a record written by something else under a notification key can differ: never send over it.
      because = 'duplicate';
    }
    const result: NotifyResult = {
      status: 'suppressed',
      reason: because,
      idempotencyKey: plan.key,
      ...(original?.messageId === undefined ? {} : { messageId: original.messageId }),
      ...(original === undefined ? {} : { sentAtMs: original.atMs }),
    };
    await this.#logSuppressed(engine, plan, because, original);
    return result;
  }

  /**
   * Best effort: a suppression cannot be written into the notification's completed record, so it
   * gets a small record of its own (claim, entry 0, complete) that the log lists beside it.
   */
  async #logSuppressed(
    engine: Engine,
    plan: Plan,
    because: SuppressedBecause,
    original: NotificationLogEntry | undefined,
  ): Promise<void> {
    if (this.#options.logSuppressed === false) return;
    const suppressions = this.#suppressions;
    try {
      const key = suppressionKeyOf(plan.key, randomUUID());
      const decision = await suppressions.begin({ key, fingerprint: FINGERPRINT });
      if (decision.kind !== 'run') return;
      const entry = this.#entry(plan, 'suppressed', {
        because,
        ...(original?.messageId === undefined ? {} : { messageId: original.messageId }),
      });
      const data = encodeLogEntry(suppressions.codec, key, entry);
      const { lease } = decision;
      await suppressions.call('append', () =>
        this.store.append({ key, token: lease.token, seq: 0, data, nowMs: engine.now() }),
      );
      await lease.complete({ kind: OutcomeKind.value, payload: encodeReceipt(entry) });
    } catch (error) {
      this.#options.onLogError?.(error);
    }
  }

  #entry(plan: Plan, kind: NotificationLogEntry['kind'], rest: Partial<NotificationLogEntry>): NotificationLogEntry {
    return {
      kind,
      recipient: plan.recipient,
      event: plan.event,
      channel: plan.channel,
      idempotencyKey: plan.key,
      atMs: this.#suppressions.now(),
      ...(plan.override === undefined ? {} : { override: plan.override }),
      ...rest,
    };
  }

  #engineFor(windowMs: number): Engine {
    let engine = this.#engines.get(windowMs);
    if (engine === undefined) {
      engine = this.#makeEngine(windowMs, undefined);
      this.#engines.set(windowMs, engine);
    }
    return engine;
  }

  #makeEngine(retentionMs: number, heartbeatMs: number | undefined): Engine {
    const o = this.#options;
    return new Engine({
      store: this.store,
      retentionMs,
      ...(o.leaseMs === undefined ? {} : { leaseMs: o.leaseMs }),
      ...(heartbeatMs === undefined ? {} : { heartbeatMs }),
      ...(o.storeTimeoutMs === undefined ? {} : { storeTimeoutMs: o.storeTimeoutMs }),
      ...(o.encryptionKey === undefined ? {} : { encryptionKey: o.encryptionKey }),
      ...(o.now === undefined ? {} : { now: o.now }),
      ...(o.telemetry === undefined ? {} : { telemetry: o.telemetry }),
      ...(o.onEvent === undefined ? {} : { onEvent: o.onEvent }),
    });
  }
}

/**
 * Sends one notification at most once per recipient, event and channel within its window, with
 * a `Notifier` made for this call (make one `Notifier` and reuse it when you send many).
 */
export function notifyOnce<M>(input: NotifyInput<M> & NotifierOptions): Promise<NotifyResult> {
  return new Notifier(input).notify(input);
}

/** The message id a send resolved with, when it resolved to a `SendReceipt` that has one. */
function reportedId(receipt: unknown): string | undefined {
  const messageId = (receipt as SendReceipt | null | undefined)?.messageId;
  return typeof messageId === 'string' && messageId.length > 0 ? messageId : undefined;
}

function sentResult(entry: NotificationLogEntry): NotifyResult {
  return {
    status: 'sent',
    idempotencyKey: entry.idempotencyKey,
    messageId: entry.messageId ?? '',
    sentAtMs: entry.atMs,
    attempt: entry.attempt ?? 1,
  };
}

function planOf<M>(input: NotifyInput<M>): Plan {
  checkText(input?.recipient, 'recipient');
  checkText(input.event, 'event');
  const override = input.override === undefined ? undefined : overrideOf(input.override);
  if (typeof input.channel === 'string') {
    checkText(input.channel, 'channel');
    if (!('send' in input) || typeof input.send !== 'function') {
      throw invalid('`send` must be a function when `channel` is a name; or pass a channel object and a `message`.');
    }
    return {
      recipient: input.recipient,
      event: input.event,
      channel: input.channel,
      send: input.send,
      isFinal: input.isFinal ?? (() => false),
      key: notificationKeyOf(input.recipient, input.event, input.channel, override?.id),
      override,
    };
  }
  const channel = input.channel;
  checkText(channel?.name, 'channel.name');
  const message = (input as { message: M }).message;
  return {
    recipient: input.recipient,
    event: input.event,
    channel: channel.name,
    send: (delivery) => channel.send(message, delivery),
    isFinal: (error) => channel.isFinal?.(error) ?? false,
    key: notificationKeyOf(input.recipient, input.event, channel.name, override?.id),
    override,
  };
}

function overrideOf(override: { reason: string; id?: string }): { reason: string; id: string } {
  checkText(override.reason, 'override.reason');
  return { reason: override.reason, id: override.id ?? randomUUID() };
}

function checkText(value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) {
    throw invalid(`\`${what}\` must be a non-empty string, got ${value === '' ? 'an empty string' : typeof value}.`);
  }
}

function invalid(what: string): IdempotencyError {
  return new IdempotencyError(ErrorCode.INVALID_OPTIONS, `[idem] notify: ${what}`);
}
