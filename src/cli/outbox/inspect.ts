/** `idem outbox status`, `dead` and `revive`: what an outbox table holds, its dead letters, and sending one again. */
import { CliError, ExitCode } from '../cli-error.js';
import { consoleOutput, type Output } from '../commands/serve.js';
import { columns } from '../text-table.js';
import { wholeNumber } from '../workflows/list-runs.js';
import { openOutbox, outboxCliError, parseOutboxDb } from './open-outbox.js';

export interface InspectOptions {
  db?: string;
  table?: string;
  json?: boolean;
  limit?: string;
}

/** Prints how many messages are pending, published (not yet cleaned up) and dead. */
export async function outboxStatus(options: InspectOptions, output: Output = consoleOutput): Promise<void> {
  const { outbox, where } = await openOutbox(parseOutboxDb(options.db), options.table);
  try {
    const counts = await outbox.counts();
    if (options.json) output.out(JSON.stringify(counts));
    else output.out(`${where}: ${counts.pending} pending, ${counts.published} published, ${counts.dead} dead`);
  } catch (error) {
    throw outboxCliError('status', error);
  } finally {
    await outbox.close().catch(() => {});
  }
}

/** Lists dead messages, oldest first: id, topic, key, attempts, enqueued, last error. */
export async function outboxDead(options: InspectOptions, output: Output = consoleOutput): Promise<void> {
  const limit = wholeNumber(options.limit ?? '100', '--limit');
  const { outbox } = await openOutbox(parseOutboxDb(options.db), options.table);
  try {
    const dead = await outbox.dead(limit);
    if (options.json) {
      for (const message of dead) {
        const { payload, ...rest } = message;
        output.out(JSON.stringify({ ...rest, payloadBytes: payload.byteLength }));
      }
      return;
    }
    if (dead.length === 0) {
      output.out('no dead messages.');
      return;
    }
    const rows = dead.map((message) => [
      message.id,
      message.topic,
      message.key ?? '-',
      String(message.attempts),
      new Date(message.createdAtMs).toISOString(),
      message.lastError.replace(/\s+/g, ' ').slice(0, 120),
    ]);
    output.out(columns([['ID', 'TOPIC', 'KEY', 'ATTEMPTS', 'ENQUEUED', 'LAST ERROR'], ...rows]));
  } catch (error) {
    throw outboxCliError('dead', error);
  } finally {
    await outbox.close().catch(() => {});
  }
}

/** Moves a dead message back to pending; exit 3 (unchanged) when no dead message has that id. */
export async function outboxRevive(id: string, options: InspectOptions, output: Output = consoleOutput): Promise<void> {
  const { outbox } = await openOutbox(parseOutboxDb(options.db), options.table);
  try {
    if (!(await outbox.revive(id))) {
      throw new CliError(
        `no dead message with id ${JSON.stringify(id)}: idem outbox dead lists them.`,
        ExitCode.unchanged,
      );
    }
    output.out(`revived ${id}: pending again, published by the next relay pass.`);
  } catch (error) {
    throw outboxCliError('revive', error);
  } finally {
    await outbox.close().catch(() => {});
  }
}
