/** The keys of notification records, and the ids derived from them that travel downstream. */
import { storeKeyOf } from '../core/keys.js';

const NOTIFICATION = 'idem:notify';
const SUPPRESSION = 'idem:notify-suppressed';

/**
 * The store key of a notification: a hash of recipient, event and channel (and the override's id
 * for a resend), so the raw recipient is not in the key and no two notifications meet on one record.
 */
export function notificationKeyOf(recipient: string, event: string, channel: string, overrideId?: string): string {
  const parts = overrideId === undefined ? [recipient, event] : [recipient, event, overrideId];
  return storeKeyOf(NOTIFICATION, channel, JSON.stringify(parts));
}

/** The key of one suppression's log record: under the notification it duplicates, unique per suppression. */
export function suppressionKeyOf(notificationKey: string, suppressionId: string): string {
  return storeKeyOf(SUPPRESSION, notificationKey, suppressionId);
}

/**
 * A stable RFC 5322 `Message-ID` for the notification whose key is `key`: the key (base64url,
 * every character allowed in an id) at `domain`. The same on every retry and in every process.
 */
export function messageIdOf(key: string, domain: string): string {
  return `<${key}@${domain}>`;
}
