/**
 * The broker `idem outbox relay` publishes to, named by `--to`: RabbitMQ (`amqp://`, `amqps://`)
 * or NATS JetStream (`nats://`). Its client library is imported here, on first use: both are
 * optional peers of idem.
 */

import { amqpPublisher } from '../../messaging/amqp/amqp-publisher.js';
import { jetstreamPublisher } from '../../messaging/jetstream/jetstream-publisher.js';
import type { OutboxPublisher } from '../../messaging/outbox/outbox.js';
import { isDriverMissing } from '../../store-kit/driver.js';
import { CliError, ExitCode, reasonOf, usageError } from '../cli-error.js';

/** A connected broker: its publisher, a promise that settles (with the reason) if the connection is lost, and close. */
export interface OpenedBroker {
  publisher: OutboxPublisher;
  /** The broker, its password hidden, for messages. */
  where: string;
  /** Resolves with the reason when the connection (or the channel) closes under the relay. */
  lost: Promise<string>;
  close(): Promise<void>;
}

export interface BrokerSettings {
  /** `--to`: amqp://, amqps:// or nats:// URL. */
  to: string;
  /** `--exchange`: the AMQP exchange (default: the default exchange). */
  exchange?: string;
  /** `--mandatory`: count unroutable AMQP messages as failed. */
  mandatory?: boolean;
}

const FORMS = 'use amqp://user:password@host:5672 (RabbitMQ) or nats://host:4222 (NATS JetStream)';

/** Connects to the broker `--to` names. */
export async function openBroker(settings: BrokerSettings): Promise<OpenedBroker> {
  const raw = String(settings.to ?? '').trim();
  if (raw === '') throw usageError(`--to is required: the broker to publish to; ${FORMS}.`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usageError(`--to ${JSON.stringify(raw)} is not a URL: ${FORMS}.`);
  }
  const where = hidePassword(url);
  if (url.protocol === 'amqp:' || url.protocol === 'amqps:') return await openAmqp(raw, where, settings);
  if (url.protocol === 'nats:' || url.protocol === 'tls:') {
    if (settings.exchange !== undefined)
      throw usageError('--exchange is for RabbitMQ; JetStream takes the topic as the subject.');
    return await openNats(raw, where);
  }
  throw usageError(`--to ${JSON.stringify(raw)}: ${FORMS}.`);
}

async function openAmqp(raw: string, where: string, settings: BrokerSettings): Promise<OpenedBroker> {
  const amqp = await importClient(() => import('amqplib'), 'amqplib', 'amqplib');
  let connection: Awaited<ReturnType<typeof amqp.connect>>;
  try {
    connection = await amqp.connect(raw);
  } catch (error) {
    throw new CliError(`cannot connect to ${where}: ${reasonOf(error)}. Check --to and that RabbitMQ is running.`);
  }
  // amqplib throws an 'error' event nobody listens to; `lost` below listens once the relay runs.
  connection.on('error', () => {});
  try {
    const exchange = settings.exchange ?? '';
    if (exchange !== '') await checkExchange(connection, exchange, where);
    const channel = await connection.createConfirmChannel();
    const lost = new Promise<string>((resolve) => {
      connection.on('error', (error: Error) => resolve(`the connection failed: ${error.message}`));
      connection.on('close', () => resolve('the connection closed'));
      channel.on('error', (error: Error) => resolve(`the channel failed: ${error.message}`));
      channel.on('close', () => resolve('the channel closed'));
    });
    return {
      publisher: amqpPublisher({ channel, exchange, mandatory: settings.mandatory ?? false }),
      where: exchange === '' ? where : `${where} (exchange ${exchange})`,
      lost,
      close: async () => {
        await connection.close().catch(() => {});
      },
    };
  } catch (error) {
    await connection.close().catch(() => {});
    throw error;
  }
}

/** Checks the exchange on a channel of its own: a missing exchange closes the channel that asked. */
async function checkExchange(
  connection: {
    createChannel(): Promise<{
      checkExchange(name: string): Promise<unknown>;
      close(): Promise<void>;
      on(event: 'error', listener: () => void): unknown;
    }>;
  },
  exchange: string,
  where: string,
): Promise<void> {
  const probe = await connection.createChannel();
  // The server closes the channel on a missing exchange: an 'error' event, expected here.
  probe.on('error', () => {});
  try {
    await probe.checkExchange(exchange);
  } catch (error) {
    throw new CliError(
      `the exchange ${exchange} does not exist on ${where} (${reasonOf(error)}): declare it, or name another with --exchange.`,
    );
  }
  await probe.close().catch(() => {});
}

async function openNats(raw: string, where: string): Promise<OpenedBroker> {
  const install = '@nats-io/transport-node @nats-io/jetstream';
  const transport = await importClient(() => import('@nats-io/transport-node'), '@nats-io/transport-node', install);
  const { jetstream } = await importClient(() => import('@nats-io/jetstream'), '@nats-io/jetstream', install);
  let nc: Awaited<ReturnType<typeof transport.connect>>;
  try {
    nc = await transport.connect({ servers: raw, name: 'idem outbox relay' });
  } catch (error) {
    throw new CliError(`cannot connect to ${where}: ${reasonOf(error)}. Check --to and that NATS is running.`);
  }
  const lost = nc
    .closed()
    .then((error) => (error ? `the connection closed: ${reasonOf(error)}` : 'the connection closed'));
  return {
    publisher: jetstreamPublisher({ js: jetstream(nc), headers: transport.headers }),
    where,
    lost,
    close: async () => {
      await nc.drain().catch(() => {});
    },
  };
}

/** Imports a broker client; one line naming the `npm i` when it is not installed. */
async function importClient<T>(load: () => Promise<T>, name: string, install: string): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if (!isDriverMissing(error, name)) throw error;
    throw new CliError(
      `publishing there needs ${name}, which is not installed: run npm i ${install} where idem is installed (npm i -g ${install} for a global idem), then try again.`,
      ExitCode.failure,
      { cause: error },
    );
  }
}

function hidePassword(url: URL): string {
  const shown = new URL(url.toString());
  if (shown.password !== '') shown.password = '***';
  return shown.toString();
}
