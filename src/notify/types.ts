/** The shapes of `idem/notify`: what a channel is given and returns, what a notification asks and answers. */

/** What a send is told about the notification it delivers: the dedupe key travels downstream with it. */
export interface Delivery {
  /** Who the notification is for, as given. */
  recipient: string;
  /** What happened, as given (`order-shipped:1234`). */
  event: string;
  /** The channel's name (`email`, `webhook`, ...). */
  channel: string;
  /**
   * The dedupe key: a hash of recipient, event and channel (and of the override's id for a
   * resend). Stable across processes and retries: send it as `Idempotency-Key` so a receiver can
   * drop a second copy that slipped through a crash.
   */
  idempotencyKey: string;
  /** A stable email `Message-ID` built from the key: `<key@domain>` (the notifier's `messageIdDomain`). */
  messageId: string;
  /** Claims of this notification's record, this one included: above 1 after a sender died mid-send. */
  attempt: number;
  /** Set when this send is an explicit resend. */
  override?: Override;
}

/** What a send may report back; kept in the log. */
export interface SendReceipt {
  /** The id the downstream gave the message (nodemailer's `info.messageId`, a provider's id). Default: `delivery.messageId`. */
  messageId?: string;
}

/**
 * A send function: delivers one notification, or throws. It may resolve to a `SendReceipt` to
 * report the downstream's message id; anything else it resolves to is ignored.
 */
export type SendFunction = (delivery: Delivery) => Promise<unknown>;

/**
 * A way to deliver, made once and used for many notifications: `emailChannel`, `webhookChannel`,
 * or your own object of this shape.
 */
export interface Channel<M> {
  /** The channel's name: part of the dedupe key, so `email` and `sms` for one event are two notifications. */
  readonly name: string;
  /** Delivers `message` (the notification's content) with the delivery's ids; may resolve to a `SendReceipt`. */
  send(message: M, delivery: Delivery): Promise<unknown>;
  /**
   * Whether a send error is final (a permanent refusal: an SMTP 5xx, an HTTP 400): the
   * notification is then recorded as failed and not sent again within its window. Other errors
   * release the key, so a retry sends. Default: no error is final.
   */
  isFinal?(error: unknown): boolean;
}

/** An explicit resend of a notification already sent: recorded with its reason. */
export interface Override {
  /** Why the notification is sent again (`customer asked for a new link`): required and logged. */
  reason: string;
  /**
   * Makes the override itself idempotent: overrides with one id send once (a retried operator
   * action does not resend twice). Default: a fresh id, so every override call sends.
   */
  id?: string;
}

interface NotifyCommon {
  /** Who the notification is for: an email address, a user id, a webhook subscriber. */
  recipient: string;
  /** What it is about: an event id that names one occurrence (`invoice-paid:inv_42`), not just a type. */
  event: string;
  /**
   * How long the notification is not sent again, from its send, in ms. Default: the notifier's
   * `windowMs` (forever: 100 years).
   */
  windowMs?: number;
  /** Send again although it was sent: the resend is logged with `reason`. */
  override?: Override;
  /**
   * When the same notification is being sent by another caller right now, wait up to this long
   * (ms) for it to end: its send is then reported as a duplicate, or, if it failed, this call
   * sends. Default: the notifier's `waitMs` (0: answer `suppressed` at once, reason `in_progress`).
   */
  waitMs?: number;
  /** After `waitMs`, still being sent by another caller: `suppress` or `throw` `IN_PROGRESS`. Default: the notifier's (`suppress`). */
  inProgress?: 'suppress' | 'throw';
}

/** A notification sent through a channel object, with its content. */
export interface ChannelNotification<M> extends NotifyCommon {
  channel: Channel<M>;
  /** The content the channel sends (an email's subject and text, a webhook's JSON body). */
  message: M;
}

/** A notification sent by any function, under a channel name. */
export interface FunctionNotification extends NotifyCommon {
  /** The channel's name: part of the dedupe key. */
  channel: string;
  send: SendFunction;
  /** Whether a send error is final (see `Channel.isFinal`). Default: no error is final. */
  isFinal?: (error: unknown) => boolean;
}

export type NotifyInput<M = unknown> = ChannelNotification<M> | FunctionNotification;

/** What `notify` did. A failed send throws instead (its error, after the key was released or recorded as failed). */
export type NotifyResult =
  | {
      status: 'sent';
      /** The delivery's dedupe key (also its `Idempotency-Key`). */
      idempotencyKey: string;
      /** The message id the send reported, or the delivery's stable `Message-ID`. */
      messageId: string;
      sentAtMs: number;
      /** Claims of the record, this one included: above 1 when a sender died mid-send before. */
      attempt: number;
    }
  | {
      status: 'suppressed';
      /**
       * `duplicate`: already sent within the window. `failed`: its send failed for good (a final
       * error) within the window. `in_progress`: another caller is sending it now.
       */
      reason: SuppressedBecause;
      idempotencyKey: string;
      /** The message id of the send it duplicates, when that send is recorded. */
      messageId?: string;
      /** When that send was recorded. */
      sentAtMs?: number;
    };

/** Why a notification was not sent: see `NotifyResult`. */
export type SuppressedBecause = 'duplicate' | 'failed' | 'in_progress';
