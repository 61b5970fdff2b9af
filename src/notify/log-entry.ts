/**
 * What the log keeps: one entry per notification record, appended as its journal's entry 0 when
 * the send ended (sent, or failed for good), and one per suppressed duplicate, in a small record
 * of its own. Entries are encoded as workflow journal entries are (the value serializer, sealed
 * with the engine's keys and bound to the record and position), so `idem workflows list`, which
 * reads every journal of the store, reads them and skips them: their `t` is not `start`.
 */
import type { JournalEntry } from '../core/journal.js';
import { type OutcomeCodec, OutcomeKind } from '../core/outcome.js';
import { defaultSerializer } from '../core/value-codec.js';
import type { Override, SuppressedBecause } from './types.js';

/** What happened to a notification, as the log shows it. */
export type LogKind = 'sent' | 'failed' | 'suppressed';

/** One line of the notification log. */
export interface NotificationLogEntry {
  kind: LogKind;
  recipient: string;
  event: string;
  channel: string;
  /** The dedupe key of the notification (of the override's resend, for an override). */
  idempotencyKey: string;
  /** When it was sent, failed, or suppressed (ms since epoch). */
  atMs: number;
  /** The message id the send reported (or the stable `Message-ID`); for a suppression, the sent message's, when known. */
  messageId?: string;
  /** Claims of the record it took to send (above 1: a sender died mid-send and another sent again). */
  attempt?: number;
  /** Set on an explicit resend: why, and its id. */
  override?: Required<Override>;
  /** For `suppressed`: why. */
  because?: SuppressedBecause;
  /** For `failed`: the final error's message. */
  error?: string;
}

/** The stored form: a tag that tells it apart from a workflow's entries. */
interface StoredLogEntry extends NotificationLogEntry {
  t: 'notification';
}

/** The bytes of `entry` as entry 0 of the record `key`. */
export function encodeLogEntry(codec: OutcomeCodec, key: string, entry: NotificationLogEntry): Uint8Array {
  const stored: StoredLogEntry = { t: 'notification', ...entry };
  return codec.encode({ kind: OutcomeKind.value, payload: defaultSerializer.encode(stored) }, `${key}#0`);
}

/** The log entry of a journal entry 0, or undefined when it is not a notification's (a workflow's, or unreadable with these keys). */
export function decodeLogEntry(
  codec: OutcomeCodec,
  key: string,
  entry: JournalEntry,
): NotificationLogEntry | undefined {
  if (entry.seq !== 0) return undefined;
  try {
    const value = defaultSerializer.decode(codec.decode(entry.data, `${key}#0`).payload) as Partial<StoredLogEntry>;
    if (value?.t !== 'notification') return undefined;
    const { t: _tag, ...logEntry } = value as StoredLogEntry;
    return logEntry;
  } catch {
    return undefined;
  }
}

/** The outcome a finished notification record completes with: its log entry, read back by duplicates. */
export function encodeReceipt(entry: NotificationLogEntry): Uint8Array {
  return defaultSerializer.encode(entry);
}

export function decodeReceipt(payload: Uint8Array): NotificationLogEntry | undefined {
  try {
    const value = defaultSerializer.decode(payload) as NotificationLogEntry | undefined;
    return typeof value?.kind === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}
