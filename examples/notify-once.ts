// An "order shipped" email that a queue delivers three times (a redelivery after a timeout, and
// two consumers racing) reaches the customer once, with a stable Message-ID; an operator's resend
// is a second email, logged with its reason. The SMTP server runs in this process (smtp-server),
// the notifications are recorded in the embedded SQLite store.
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { emailChannel, Notifier } from '../src/notify/index.js';
import { SqliteStore } from '../src/stores/sqlite/index.js';

// The receiving mail server: it keeps the Message-ID of every message it accepts.
const received: string[] = [];
const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  disableReverseLookup: true,
  logger: false,
  onData(stream, _session, callback) {
    let raw = '';
    stream.on('data', (chunk: Buffer) => {
      raw += chunk.toString('utf8');
    });
    stream.on('end', () => {
      received.push(/^Message-ID:\s*(.+)$/im.exec(raw)?.[1]?.trim() ?? '?');
      callback();
    });
  },
});
await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
const port = (smtp.server.address() as AddressInfo).port;

const dir = mkdtempSync(join(tmpdir(), 'idem-notify-'));
const store = new SqliteStore({ path: join(dir, 'idem.db') });
const notifier = new Notifier({ store });
const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
const email = emailChannel(transport, { from: 'shop@example.com', domain: 'example.com' });

const shipped = {
  recipient: 'ann@example.com',
  event: 'order-shipped:1042',
  channel: email,
  message: { subject: 'Your order 1042 shipped', text: 'It is on its way.' },
};
const first = await notifier.notify(shipped); // the first delivery
const racing = await Promise.all([notifier.notify(shipped), notifier.notify(shipped)]); // two consumers, later
const resend = await notifier.notify({ ...shipped, override: { reason: 'customer deleted the first email' } });

const { entries } = await notifier.log({ recipient: 'ann@example.com' });
console.log(`emails received: ${received.length} (${received.join(', ')})`);
console.log(
  `first: ${first.status}; redeliveries: ${racing.map((r) => r.status).join(', ')}; resend: ${resend.status}`,
);
for (const entry of entries) {
  console.log(`  log: ${entry.kind} ${entry.event} ${entry.because ?? entry.override?.reason ?? ''}`.trimEnd());
}

transport.close();
await store.close();
await new Promise<void>((resolve) => smtp.close(() => resolve()));
rmSync(dir, { recursive: true, force: true });
if (received.length !== 2 || first.status !== 'sent' || racing.some((r) => r.status !== 'suppressed')) {
  throw new Error('expected one email for three deliveries, and one for the override');
}
