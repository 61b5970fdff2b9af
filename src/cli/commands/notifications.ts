import type { Command } from 'commander';
import { DEFAULT_STORE_URL } from '../store-url.js';

const STORE_HELP = `the store the notifications are recorded in: sqlite:./idem.db | postgres://... | redis://... | mysql://... (default ${DEFAULT_STORE_URL})`;

/** `idem notifications log`: what idem/notify sent, failed to send, and suppressed as duplicates. */
export function registerNotifications(program: Command): void {
  const notifications = program
    .command('notifications')
    .summary('the log of notifications sent once (idem/notify)')
    .description(
      'Read the log of idem/notify: each notification sent (when, channel, recipient, event, message id, and an ' +
        "override's reason), failed for good, or suppressed as a duplicate. Set IDEM_ENCRYPTION_KEY when the " +
        'notifier seals its log.',
    );

  notifications
    .command('log')
    .description(
      'List log entries: time, kind, channel, recipient, event, message id, why (override reason, suppression).',
    )
    .option('--store <url>', STORE_HELP)
    .option('--recipient <recipient>', 'only this recipient')
    .option('--event <event>', 'only this event')
    .option('--channel <channel>', 'only this channel (email, webhook, ...)')
    .option('--kind <kind>', 'only sent, failed or suppressed')
    .option('--limit <n>', 'at most this many entries (default 100)')
    .option('--cursor <cursor>', 'continue after the listing that printed this cursor')
    .option('--json', 'one JSON object per line')
    .action(async (options) => (await import('../notifications/log.js')).notificationsLog(options));
}
