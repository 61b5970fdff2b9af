/**
 * `idem/notify`: notifications sent at most once per recipient, event and channel within a
 * window, with a queryable log of what was sent, failed and suppressed (docs/notify.md).
 */
export {
  type EmailChannelOptions,
  type EmailMessage,
  emailChannel,
  type MailTransportLike,
  type WebhookChannelOptions,
  WebhookStatusError,
  webhookChannel,
} from './channels.js';
export type { LogPage, LogQuery } from './log.js';
export type { LogKind, NotificationLogEntry } from './log-entry.js';
export {
  DEFAULT_SUPPRESSION_RETENTION_MS,
  FOREVER_MS,
  Notifier,
  type NotifierOptions,
  notifyOnce,
} from './notifier.js';
export type {
  Channel,
  ChannelNotification,
  Delivery,
  FunctionNotification,
  NotifyInput,
  NotifyResult,
  Override,
  SendFunction,
  SendReceipt,
  SuppressedBecause,
} from './types.js';
