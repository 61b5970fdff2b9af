/**
 * A child process of the outbox conformance suite. It builds the target from the factory module,
 * says `ready`, waits for `go` on stdin so every process starts together, then:
 * - `relay`: runs passes until nothing is pending. While it publishes a message it holds a marker
 *   file for it (created exclusively: another process holding it is an overlap), and appends the
 *   id to a shared log; prints an `OutboxWorkerReport`.
 * - `hold`: runs one pass whose publish prints `holding [ids]` and never returns, and waits to be
 *   killed with SIGKILL.
 */
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { PendingMessage } from '../messaging/outbox/outbox.js';
import type { OutboxConformanceTarget } from './outbox-inputs.js';
import { drain, pause } from './outbox-inputs.js';

export interface OutboxWorkerJob {
  factoryModule: string;
  createExport: string;
  table: string;
  mode: 'relay' | 'hold';
  /** Messages per pass. */
  limit: number;
  /** `relay`: where the marker files go. */
  dir?: string;
  /** `relay`: the shared log of published ids. */
  log?: string;
}

export interface OutboxWorkerReport {
  /** How many messages this process published. */
  published: number;
  /** Ids whose marker another process held while this one published them. */
  overlaps: string[];
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '') as OutboxWorkerJob;
  const factory = (await import(job.factoryModule)) as Record<
    string,
    (table: string) => Promise<OutboxConformanceTarget>
  >;
  const create = factory[job.createExport];
  if (typeof create !== 'function') throw new Error(`${job.factoryModule} does not export ${job.createExport}`);
  const target = await create(job.table);
  await target.outbox.ensureSchema();
  const lines = createInterface({ input: process.stdin });
  const iterator = lines[Symbol.asyncIterator]();
  process.stdout.write('ready\n');
  await iterator.next();

  if (job.mode === 'hold') {
    setInterval(() => {}, 60_000);
    await target.outbox.relay({
      limit: job.limit,
      nowMs: Date.now(),
      retryAtMs: () => undefined,
      publish: (messages) => {
        process.stdout.write(`holding ${JSON.stringify(messages.map((message) => message.id))}\n`);
        return new Promise(() => {});
      },
    });
    return;
  }
  const report = await relayAll(target, job);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  await target.close();
  lines.close();
}

async function relayAll(target: OutboxConformanceTarget, job: OutboxWorkerJob): Promise<OutboxWorkerReport> {
  const { dir, log } = job;
  if (dir === undefined || log === undefined) throw new Error('relay needs a dir and a log');
  const report: OutboxWorkerReport = { published: 0, overlaps: [] };
  const logFd = openSync(log, 'a');
  const publish = async (messages: readonly PendingMessage[]) => {
    const markers: string[] = [];
    for (const message of messages) {
      const marker = join(dir, Buffer.from(message.id).toString('hex'));
      try {
        closeSync(openSync(marker, 'wx'));
        markers.push(marker);
      } catch {
        report.overlaps.push(message.id);
      }
      // One write per id on an O_APPEND descriptor: the log's order is the order publishes began.
      writeSync(logFd, `${message.id}\n`);
    }
    report.published += messages.length;
    await pause(Math.floor(Math.random() * 3));
    for (const marker of markers) unlinkSync(marker);
    return messages.map(() => ({ ok: true as const }));
  };
  try {
    await drain(target.outbox, publish, job.limit);
  } finally {
    closeSync(logFd);
  }
  return report;
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
