import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { isJournalStore, type JournalStore } from '../../src/core/journal.js';
import type { AdminStore } from '../../src/core/store.js';
import { emailChannel, Notifier, type NotifyResult, notifyOnce, webhookChannel } from '../../src/notify/index.js';
import type { Job } from './fixtures/notify-worker.js';
import { type HttpReceiver, type SmtpReceiver, startHttpReceiver, startSmtpReceiver } from './fixtures/receivers.js';

const workerPath = new URL('./fixtures/notify-worker.ts', import.meta.url).pathname;
const stores = ['sqlite', 'postgres', 'redis'] as const;

type Factory = { createStore(ns: string): Promise<AdminStore>; dropStore(ns: string): Promise<void> };

/** Runs one sender process to its end: its printed result, or `killed` when it SIGKILLed itself. */
function runSender(job: Job): Promise<NotifyResult | { error: string } | 'killed'> {
  const child = spawn(process.execPath, [...process.execArgv, workerPath, JSON.stringify(job)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve('killed');
      else if (code === 0) resolve(JSON.parse(stdout.trim().split('\n').at(-1) ?? 'null'));
      else reject(new Error(`sender exited ${code}: ${stdout}`));
    });
  });
}

for (const kind of stores) {
  describe(`notify on ${kind}`, () => {
    const namespace = `notify_${kind}_${randomBytes(4).toString('hex')}`;
    let factory: Factory;
    let store: JournalStore;
    let smtp: SmtpReceiver;
    let http: HttpReceiver;
    let notifier: Notifier;
    let transport: nodemailer.Transporter;
    const base = (recipient: string, event: string): Omit<Job, 'mode'> => ({
      store: kind,
      namespace,
      smtpPort: smtp.port,
      recipient,
      event,
    });
    const mailsTo = (recipient: string) => smtp.mails.filter((mail) => mail.to.includes(recipient));

    before(async () => {
      factory = (await import(`../stores/${kind}.factory.ts`)) as Factory;
      const opened = await factory.createStore(namespace);
      assert.ok(isJournalStore(opened));
      store = opened;
      smtp = await startSmtpReceiver();
      http = await startHttpReceiver();
      notifier = new Notifier({ store, leaseMs: 1000 });
      transport = nodemailer.createTransport({ host: '127.0.0.1', port: smtp.port, secure: false, ignoreTLS: true });
    });

    after(async () => {
      transport.close();
      await store.close();
      await smtp.close();
      await http.close();
      await factory.dropStore(namespace);
    });

    it('sends one email for a notification delivered twice (a queue redelivery), with a stable Message-ID', async () => {
      const email = emailChannel(transport, { from: 'shop@example.com', domain: 'example.com' });
      const input = {
        recipient: 'ann@example.com',
        event: 'shipped:1',
        channel: email,
        message: { subject: 'Shipped' },
      };
      const first = await notifier.notify(input);
      const second = await notifier.notify(input);
      assert.equal(first.status, 'sent');
      assert.equal(second.status, 'suppressed');
      assert.equal(second.status === 'suppressed' && second.reason, 'duplicate');
      const mails = mailsTo('ann@example.com');
      assert.equal(mails.length, 1);
      assert.equal(mails[0]?.messageId, `<${first.idempotencyKey}@example.com>`);
      assert.equal(mails[0]?.idempotencyKey, first.idempotencyKey);
      const log = await notifier.log({ recipient: 'ann@example.com' });
      assert.deepEqual(
        log.entries.map((entry) => [entry.kind, entry.event, entry.channel, entry.because]),
        [
          ['sent', 'shipped:1', 'email', undefined],
          ['suppressed', 'shipped:1', 'email', 'duplicate'],
        ],
      );
      assert.equal(log.entries[1]?.messageId, log.entries[0]?.messageId);
    });

    it('sends again only with an override, as a second message with its own Message-ID, logged with its reason', async () => {
      const email = emailChannel(transport, { from: 'shop@example.com' });
      const input = { recipient: 'bob@example.com', event: 'reset:1', channel: email, message: { subject: 'Reset' } };
      await notifier.notify(input);
      const resend = await notifier.notify({
        ...input,
        override: { reason: 'customer lost the link', id: 'ticket-7' },
      });
      const again = await notifier.notify({ ...input, override: { reason: 'customer lost the link', id: 'ticket-7' } });
      assert.equal(resend.status, 'sent');
      assert.equal(again.status, 'suppressed');
      const mails = mailsTo('bob@example.com');
      assert.equal(mails.length, 2);
      assert.notEqual(mails[0]?.messageId, mails[1]?.messageId);
      const log = await notifier.log({ recipient: 'bob@example.com', kind: 'sent' });
      assert.deepEqual(
        log.entries.map((entry) => entry.override?.reason),
        [undefined, 'customer lost the link'],
      );
    });

    it('releases the key when a send fails, so a retry sends; a final refusal is recorded and not retried', async () => {
      let calls = 0;
      const flaky = {
        recipient: 'carol',
        event: 'invoice:9',
        channel: 'sms',
        send: async () => {
          calls += 1;
          if (calls === 1) throw new Error('gateway timeout');
          return { messageId: 'sms-1' };
        },
      };
      await assert.rejects(notifier.notify(flaky), /gateway timeout/);
      const retried = await notifier.notify(flaky);
      assert.equal(retried.status === 'sent' && retried.messageId, 'sms-1');
      assert.equal(calls, 2);

      smtp.refuse.add('gone@example.com');
      const email = emailChannel(transport, { from: 'shop@example.com' });
      const refused = { recipient: 'gone@example.com', event: 'welcome', channel: email, message: { subject: 'Hi' } };
      await assert.rejects(notifier.notify(refused), (error: { responseCode?: number }) => error.responseCode === 550);
      const afterRefusal = await notifier.notify(refused);
      assert.equal(afterRefusal.status === 'suppressed' && afterRefusal.reason, 'failed');
      const log = await notifier.log({ recipient: 'gone@example.com', kind: 'failed' });
      assert.equal(log.entries.length, 1);
    });

    it('posts a webhook once, with the notification key as Idempotency-Key; a 503 is retried', async () => {
      const hook = webhookChannel({ url: http.url });
      const input = { recipient: 'acme', event: 'paid:5', channel: hook, message: { id: 5 } };
      http.status = 503;
      await assert.rejects(notifyOnce({ store, ...input }), /503/);
      http.status = 200;
      const sent = await notifyOnce({ store, ...input });
      const duplicate = await notifyOnce({ store, ...input });
      assert.equal(duplicate.status, 'suppressed');
      assert.equal(http.deliveries.length, 2);
      assert.deepEqual(
        http.deliveries.map((delivery) => delivery.idempotencyKey),
        [sent.idempotencyKey, sent.idempotencyKey],
      );
    });

    it('sends one email when many processes send the same notification at once', async () => {
      const results = await Promise.all(
        Array.from({ length: 4 }, () => runSender({ ...base('dave@example.com', 'race'), mode: 'plain' })),
      );
      const statuses = results.map((result) =>
        typeof result === 'object' && 'status' in result ? result.status : result,
      );
      assert.equal(statuses.filter((status) => status === 'sent').length, 1, JSON.stringify(results));
      assert.equal(statuses.filter((status) => status === 'suppressed').length, 3, JSON.stringify(results));
      assert.equal(mailsTo('dave@example.com').length, 1);
    });

    it('resends with the same Message-ID when the sender dies between the SMTP acceptance and the record', async () => {
      const job = { ...base('erin@example.com', 'killed'), mode: 'plain' as const };
      assert.equal(await runSender({ ...job, kill: 'after-send' }), 'killed');
      const resumed = await runSender({ ...job, waitMs: 10_000 });
      assert.equal(typeof resumed === 'object' && 'status' in resumed && resumed.status, 'sent');
      const mails = mailsTo('erin@example.com');
      assert.equal(mails.length, 2, 'the documented at-least-once window');
      assert.equal(mails[0]?.messageId, mails[1]?.messageId);
      const log = await notifier.log({ recipient: 'erin@example.com' });
      assert.equal(log.entries[0]?.attempt, 2);
    });

    it('sends one email from a workflow killed after its notification step and resumed', async () => {
      const job = { ...base('fay@example.com', 'onboarded'), mode: 'workflow' as const };
      assert.equal(await runSender({ ...job, kill: 'after-step' }), 'killed');
      const resumed = await runSender({ ...job, resume: true });
      assert.equal(typeof resumed === 'object' && 'status' in resumed && resumed.status, 'sent');
      assert.equal(mailsTo('fay@example.com').length, 1);
    });

    it('resends with the same Message-ID from a workflow killed inside its notification step, after the SMTP acceptance', async () => {
      const job = { ...base('gus@example.com', 'onboarded'), mode: 'workflow' as const };
      assert.equal(await runSender({ ...job, kill: 'after-send' }), 'killed');
      const resumed = await runSender({ ...job, resume: true });
      assert.equal(typeof resumed === 'object' && 'status' in resumed && resumed.status, 'sent');
      const mails = mailsTo('gus@example.com');
      assert.equal(mails.length, 2);
      assert.equal(mails[0]?.messageId, mails[1]?.messageId);
    });
  });
}
