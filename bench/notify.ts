/**
 * `npm run bench -- --only notify`: what `Notifier.notify` costs per email against a bare
 * nodemailer send to a local SMTP server (smtp-server, in this process), on each journal store.
 * The three operations take turns in slices of one window, one in flight, over one pooled SMTP
 * connection each:
 *
 *   bare       transport.sendMail (the floor: an SMTP exchange on loopback)
 *   notify     notifier.notify for a new recipient each call: claim, send, log entry, complete
 *   duplicate  notifier.notify of a notification already sent: claim refused, suppression logged
 */
import type { AddressInfo } from 'node:net';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { isJournalStore } from '../src/core/journal.js';
import { emailChannel, Notifier } from '../src/notify/index.js';
import { type Measurement, measureTogether } from './measure.js';
import { type Align, table } from './report.js';
import { describe, openTarget, type StoreName, Unreachable } from './store-targets.js';

export const NOTIFY_STORES = ['sqlite', 'postgres', 'redis'] as const;

export interface NotifyRow {
  store: StoreName;
  where?: string;
  bare?: Measurement;
  notify?: Measurement;
  duplicate?: Measurement;
  skipped?: string;
}

export interface NotifyReport {
  durationMs: number;
  rows: NotifyRow[];
}

interface Options {
  stores: StoreName[];
  quick: boolean;
  log: (line: string) => void;
}

export async function benchNotify({ stores, quick, log }: Options): Promise<NotifyReport> {
  const durationMs = quick ? 1000 : 6000;
  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    disableReverseLookup: true,
    onData(stream, _session, callback) {
      stream.resume();
      stream.on('end', () => callback());
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  const port = (smtp.server.address() as AddressInfo).port;
  const rows: NotifyRow[] = [];
  try {
    for (const name of NOTIFY_STORES.filter((store) => stores.includes(store))) {
      log(`  notify on ${name}`);
      rows.push(await benchOne(name, port, durationMs));
    }
  } finally {
    await new Promise<void>((resolve) => smtp.close(() => resolve()));
  }
  return { durationMs, rows };
}

async function benchOne(name: StoreName, port: number, durationMs: number): Promise<NotifyRow> {
  let target: Awaited<ReturnType<typeof openTarget>>;
  try {
    target = await openTarget(name);
  } catch (error) {
    if (error instanceof Unreachable) return { store: name, skipped: error.message };
    throw error;
  }
  const pooled = () =>
    nodemailer.createTransport({
      host: '127.0.0.1',
      port,
      secure: false,
      ignoreTLS: true,
      pool: true,
      maxConnections: 1,
    });
  const bareTransport = pooled();
  const notifyTransport = pooled();
  const duplicateTransport = pooled();
  const transports = [bareTransport, notifyTransport, duplicateTransport];
  try {
    const { store } = target;
    if (!isJournalStore(store)) return { store: name, skipped: 'keeps no journals' };
    const notifier = new Notifier({ store });
    const message = { subject: 'Your order shipped', text: 'It is on its way.' };
    const email = emailChannel(notifyTransport, { from: 'shop@example.com', domain: 'example.com' });
    const duplicateEmail = emailChannel(duplicateTransport, { from: 'shop@example.com', domain: 'example.com' });
    const run = `${Date.now()}`;
    await notifier.notify({ recipient: 'dup@example.com', event: run, channel: duplicateEmail, message });
    const [bare, notify, duplicate] = await measureTogether(
      [
        (i) => bareTransport.sendMail({ from: 'shop@example.com', to: `r${i}@example.com`, ...message }),
        (i) => notifier.notify({ recipient: `r${i}@example.com`, event: run, channel: email, message }),
        () => notifier.notify({ recipient: 'dup@example.com', event: run, channel: duplicateEmail, message }),
      ],
      { durationMs, slices: durationMs >= 2000 ? 6 : 2 },
    );
    return { store: name, where: target.where, bare, notify, duplicate } as NotifyRow;
  } catch (error) {
    return { store: name, skipped: describe(error) };
  } finally {
    for (const transport of transports) transport.close();
    await target.close();
  }
}

const ms = (us: number | undefined) => (us === undefined || !Number.isFinite(us) ? '-' : (us / 1000).toFixed(2));

export function notifySection(report: NotifyReport): string {
  const out = [
    `NOTIFY: one email per operation to a local SMTP server (smtp-server, pooled nodemailer transports), 1 in flight, ${report.durationMs} ms per store, the three in turns;`,
    'bare = transport.sendMail; notify = notifier.notify, a new recipient each call (claim, send, log entry, complete);',
    'duplicate = notifier.notify of a notification already sent (suppressed: claim refused, suppression logged, no email);',
    'overhead = notify mean - bare mean.',
    '',
  ];
  const align: Align[] = ['left', 'right', 'right', 'right', 'right', 'right', 'right'];
  const rows = report.rows.map((row) => {
    if (row.skipped !== undefined) return [row.store, `skipped: ${row.skipped}`, '', '', '', '', ''];
    const bare = row.bare?.meanUs ?? Number.NaN;
    const notify = row.notify?.meanUs ?? Number.NaN;
    return [
      row.store,
      ms(bare),
      ms(notify),
      ms(notify - bare),
      Number.isFinite(notify / bare) ? `${(notify / bare).toFixed(2)}x` : '-',
      ms(row.duplicate?.meanUs),
      ms(row.notify?.p99Us),
    ];
  });
  out.push(
    table(['store', 'bare ms', 'notify ms', 'overhead ms', 'x bare', 'duplicate ms', 'notify p99 ms'], rows, align),
  );
  return out.join('\n');
}
