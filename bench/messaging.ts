/**
 * The messaging part of `npm run bench` (`--only messaging`): the inbox's cost per message against
 * a bare consumer on RabbitMQ and JetStream (bench/inbox.ts), the BullMQ guard's against a bare
 * processor (bench/jobs.ts), the outbox relay's throughput per database with a publisher that does
 * nothing (bench/outbox.ts), and from PostgreSQL through RabbitMQ and JetStream (bench/relay.ts).
 */
import { benchInbox, type InboxBenchRow } from './inbox.js';
import { benchJobs, type JobsReport, jobsSection } from './jobs.js';
import { benchOutbox, type OutboxBenchReport, outboxSection } from './outbox.js';
import { benchRelay, type RelayReport, relaySection } from './relay.js';
import { table } from './report.js';
import type { StoreName } from './store-targets.js';

export interface MessagingReport {
  inbox: { messages: number; concurrency: number; rows: InboxBenchRow[] };
  jobs: JobsReport;
  outbox: OutboxBenchReport;
  relay?: RelayReport;
}

export interface MessagingBenchOptions {
  stores: StoreName[];
  quick: boolean;
  log: (line: string) => void;
}

export async function benchMessaging({ stores, quick, log }: MessagingBenchOptions): Promise<MessagingReport> {
  const messages = quick ? 1000 : 5000;
  const concurrency = 16;
  const inboxStores = stores.filter((name) => name !== 'mysql');
  const inbox = { messages, concurrency, rows: await benchInbox({ stores: inboxStores, messages, concurrency, log }) };
  const jobs = await benchJobs({ stores, quick, log });
  const dialects = (['postgres', 'mysql', 'sqlite'] as const).filter((name) => stores.includes(name));
  const outbox = await benchOutbox({ dialects, quick, log });
  const relay = stores.includes('postgres') ? await benchRelay({ quick, log }) : undefined;
  return { inbox, jobs, outbox, relay };
}

export function messagingSection(report: MessagingReport): string {
  const { inbox } = report;
  const bare = (broker: string) =>
    inbox.rows.find((row) => row.broker === broker && row.consumer === 'bare')?.messagesPerSecond;
  const rows = inbox.rows.map((row) => {
    const base = bare(row.broker);
    if (row.messagesPerSecond === undefined) return [row.broker, row.consumer, '-', '-', '-', row.skipped ?? ''];
    const ratio = base === undefined ? '-' : (row.messagesPerSecond / base).toFixed(2);
    const extraUs =
      base === undefined || row.consumer === 'bare'
        ? '-'
        : String(Math.round(1e6 / row.messagesPerSecond - 1e6 / base));
    return [row.broker, row.consumer, String(Math.round(row.messagesPerSecond)), ratio, extraUs, ''];
  });
  const inboxTable = table(['broker', 'consumer', 'msg/s', 'x bare', 'extra us/msg (wall)', 'note'], rows, [
    'left',
    'left',
    'right',
    'right',
    'right',
    'left',
  ]);
  return [
    `Inbox: ${inbox.messages} queued messages drained, ${inbox.concurrency} at a time, a handler that does nothing (claim, run, complete, then ack)`,
    inboxTable,
    jobsSection(report.jobs),
    outboxSection(report.outbox),
    ...(report.relay === undefined ? [] : [relaySection(report.relay)]),
  ].join('\n\n');
}
