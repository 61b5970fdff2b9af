/**
 * The channels users have: email through a nodemailer transport, webhooks over HTTP. Both carry
 * the dedupe key downstream (`Message-ID`, `Idempotency-Key`), so a receiver can drop the second
 * copy a crash between the send and its record lets through. Neither imports its library: a
 * transport is anything with nodemailer's `sendMail`, a fetch is the global one.
 */
import type { Channel, Delivery, SendReceipt } from './types.js';

/** What `emailChannel` needs of a nodemailer `Transporter`: its `sendMail`. */
export interface MailTransportLike {
  sendMail(mail: Record<string, unknown>): Promise<{ messageId?: string }>;
}

/** An email's content, as nodemailer takes it (any other nodemailer field passes through). */
export interface EmailMessage {
  /** Default: the notification's recipient. */
  to?: string | string[];
  subject: string;
  text?: string;
  html?: string;
  /** Extra headers; `Idempotency-Key` is added. */
  headers?: Record<string, string>;
  [field: string]: unknown;
}

export interface EmailChannelOptions {
  /** The sender address. */
  from: string;
  /** The channel's name in the dedupe key. Default `email`. */
  name?: string;
  /**
   * The domain of the `Message-ID`: `<key@domain>`. Default: the notifier's `messageIdDomain`
   * (`idem`). Use your sending domain so the id looks like yours.
   */
  domain?: string;
}

/**
 * Email through a nodemailer transport. Every message carries a stable `Message-ID` (and an
 * `Idempotency-Key` header) derived from the notification's key. A 5xx reply of the SMTP server
 * (a permanent refusal) is a final error: not sent again within the window; others release the key.
 *
 * @example
 * ```ts
 * const email = emailChannel(nodemailer.createTransport({ host: 'smtp.example.com' }), { from: 'shop@example.com', domain: 'example.com' });
 * await notifier.notify({ recipient: 'ann@example.com', event: 'welcome', channel: email, message: { subject: 'Welcome', text: 'Hello' } });
 * ```
 */
export function emailChannel(transport: MailTransportLike, options: EmailChannelOptions): Channel<EmailMessage> {
  return {
    name: options.name ?? 'email',
    async send(message: EmailMessage, delivery: Delivery): Promise<SendReceipt> {
      const messageId =
        options.domain === undefined ? delivery.messageId : `<${delivery.idempotencyKey}@${options.domain}>`;
      const info = await transport.sendMail({
        ...message,
        from: options.from,
        to: message.to ?? delivery.recipient,
        messageId,
        headers: { ...message.headers, 'Idempotency-Key': delivery.idempotencyKey },
      });
      return { messageId: info.messageId ?? messageId };
    },
    isFinal(error: unknown): boolean {
      const code = (error as { responseCode?: unknown } | null)?.responseCode;
      return typeof code === 'number' && code >= 500 && code < 600;
    },
  };
}

export interface WebhookChannelOptions {
  /** Where to POST: one URL, or one per recipient. */
  url: string | ((recipient: string) => string);
  /** Headers sent with every delivery (authorization, a signature). `Idempotency-Key` is added. */
  headers?: Record<string, string>;
  /** The channel's name in the dedupe key. Default `webhook`. */
  name?: string;
  /** The fetch to use. Default: the global `fetch`. */
  fetch?: typeof fetch;
}

/** Thrown for a webhook answer that is not 2xx: its status says whether it is final. */
export class WebhookStatusError extends Error {
  override readonly name = 'WebhookStatusError';
  constructor(readonly status: number) {
    super(`the webhook answered ${status}`);
  }
}

/**
 * Webhook deliveries: the message is POSTed as JSON with an `Idempotency-Key` header (the
 * notification's key, stable across retries). A 2xx answer is sent; a 4xx other than 408, 409
 * and 429 is final (not sent again within the window); anything else releases the key for a retry.
 *
 * @example
 * ```ts
 * const hook = webhookChannel({ url: 'https://example.com/hooks/orders', headers: { authorization: `Bearer ${token}` } });
 * await notifier.notify({ recipient: 'acme', event: `order-paid:${id}`, channel: hook, message: { id, status: 'paid' } });
 * ```
 */
export function webhookChannel(options: WebhookChannelOptions): Channel<unknown> {
  const post = options.fetch ?? fetch;
  return {
    name: options.name ?? 'webhook',
    async send(message: unknown, delivery: Delivery): Promise<SendReceipt> {
      const url = typeof options.url === 'function' ? options.url(delivery.recipient) : options.url;
      const response = await post(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...options.headers, 'idempotency-key': delivery.idempotencyKey },
        body: JSON.stringify(message),
      });
      // The body is not used; reading it lets the connection be reused.
      await response.arrayBuffer().catch(() => undefined);
      if (!response.ok) throw new WebhookStatusError(response.status);
      return { messageId: response.headers.get('x-message-id') ?? delivery.idempotencyKey };
    },
    isFinal(error: unknown): boolean {
      if (!(error instanceof WebhookStatusError)) return false;
      return error.status >= 400 && error.status < 500 && ![408, 409, 429].includes(error.status);
    },
  };
}
