/** `idem outbox relay`: publishes an outbox table's messages to RabbitMQ or NATS JetStream until stopped (or once). */

import type { RelayPassResult } from '../../messaging/outbox/outbox.js';
import { OutboxRelay } from '../../messaging/outbox/relay.js';
import { CliError, reasonOf, usageError } from '../cli-error.js';
import { consoleOutput, nextSignal, type Output } from '../commands/serve.js';
import { formatDuration, parseDuration } from '../duration.js';
import { wholeNumber } from '../workflows/list-runs.js';
import { openBroker } from './open-broker.js';
import { openOutbox, outboxCliError, parseOutboxDb } from './open-outbox.js';

export interface RelayCommandOptions {
  db?: string;
  table?: string;
  to?: string;
  exchange?: string;
  mandatory?: boolean;
  batch?: string;
  poll?: string;
  maxAttempts?: string;
  cleanupAfter?: string;
  once?: boolean;
}

interface RelaySettings {
  batchSize: number;
  pollMs: number;
  maxAttempts: number;
  cleanupAfterMs: number;
}

function settingsOf(options: RelayCommandOptions): RelaySettings {
  const batchSize = wholeNumber(options.batch ?? '100', '--batch');
  if (batchSize > 1000) throw usageError(`--batch ${batchSize}: at most 1000 messages a pass.`);
  return {
    batchSize,
    pollMs: parseDuration(options.poll ?? '500ms', '--poll'),
    maxAttempts: wholeNumber(options.maxAttempts ?? '10', '--max-attempts'),
    cleanupAfterMs: parseDuration(options.cleanupAfter ?? '7d', '--cleanup-after'),
  };
}

/** Runs the relay: with `--once` until nothing is due, else until SIGTERM or SIGINT (exit 0) or the broker is lost (exit 1). */
export async function runRelay(options: RelayCommandOptions, output: Output = consoleOutput): Promise<void> {
  try {
    await relayUntilStopped(options, output);
  } catch (error) {
    throw outboxCliError('relay', error);
  }
}

async function relayUntilStopped(options: RelayCommandOptions, output: Output): Promise<void> {
  const settings = settingsOf(options);
  const spec = parseOutboxDb(options.db);
  // Catch the signals before anything is opened: whoever started us may signal at once.
  const signal = nextSignal();
  const { outbox, where } = await openOutbox(spec, options.table);
  try {
    const broker = await openBroker({
      to: options.to ?? '',
      ...(options.exchange === undefined ? {} : { exchange: options.exchange }),
      mandatory: options.mandatory === true,
    });
    try {
      const totals = { claimed: 0, published: 0, failed: 0, dead: 0 };
      const relay = new OutboxRelay({
        outbox,
        publisher: broker.publisher,
        batchSize: settings.batchSize,
        pollMs: settings.pollMs,
        maxAttempts: settings.maxAttempts,
        cleanup: { afterMs: settings.cleanupAfterMs },
        onError: (error) => output.err(`idem: outbox relay: ${reasonOf(error)}; trying again.`),
        onPass: (result) => add(totals, result),
      });
      const route = `${where}${options.table === undefined ? '' : ` (table ${options.table})`} to ${broker.where}`;
      if (options.once) {
        let stopped = false;
        void signal.then(() => (stopped = true));
        // Until a pass finds nothing due; a signal lets the pass in flight finish and stops there.
        while (!stopped && (await relay.runOnce()).claimed > 0) {}
        output.out(`idem: outbox relay ${route}: ${summary(totals)}.`);
        return;
      }
      relay.start();
      output.out(
        `idem: outbox relay ${route} (batch ${settings.batchSize}, poll ${formatDuration(settings.pollMs)}); SIGTERM or SIGINT stops it.`,
      );
      const reporter = setInterval(progress(totals, output), 10_000);
      reporter.unref();
      const ended = await Promise.race([signal.then((name) => ({ name })), broker.lost.then((lost) => ({ lost }))]);
      clearInterval(reporter);
      await relay.stop();
      if ('lost' in ended) {
        throw new CliError(
          `outbox relay to ${broker.where}: ${ended.lost}; stopped after ${summary(totals)}. ` +
            'Messages not marked are published again (same ids) by the next relay.',
        );
      }
      output.err(`idem: ${ended.name}: stopped after ${summary(totals)}.`);
    } finally {
      await broker.close();
    }
  } finally {
    await outbox.close().catch(() => {});
  }
}

function add(totals: RelayPassResult, result: RelayPassResult): void {
  totals.claimed += result.claimed;
  totals.published += result.published;
  totals.failed += result.failed;
  totals.dead += result.dead;
}

/** A progress line for each tick while messages move, none while the outbox is idle. */
function progress(totals: RelayPassResult, output: Output): () => void {
  let last = '';
  return () => {
    const line = summary(totals);
    if (line === last) return;
    last = line;
    output.out(`idem: outbox relay: ${line} so far.`);
  };
}

function summary(totals: RelayPassResult): string {
  return (
    `${totals.published} published, ${totals.failed} failed (to be retried), ${totals.dead} dead` +
    (totals.dead > 0 ? ' (idem outbox dead lists them)' : '')
  );
}
