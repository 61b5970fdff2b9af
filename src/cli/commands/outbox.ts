import type { Command } from 'commander';

const DB_HELP = 'the database with the outbox table: postgres://... | mysql://... | sqlite:./app.db';
const TABLE_HELP = 'the outbox table (default idem_outbox)';

/** `idem outbox relay | status | dead | revive`: the transactional outbox's relay and its operators' view. */
export function registerOutbox(program: Command): void {
  const outbox = program
    .command('outbox')
    .summary('relay the transactional outbox to RabbitMQ or NATS JetStream (idem/messaging)')
    .description(
      'Publish the messages an application wrote to its outbox table (idem/messaging) to RabbitMQ or NATS ' +
        'JetStream, each with its stable message id; see what is pending, published or dead; revive dead messages.',
    );

  outbox
    .command('relay')
    .description(
      'Publish pending messages until stopped (SIGTERM or SIGINT: the pass in flight finishes, exit 0), or with ' +
        '--once until none is due. Run several at once for throughput: no message is published by two at the same time.',
    )
    .requiredOption('--db <url>', DB_HELP)
    .option('--table <name>', TABLE_HELP)
    .requiredOption('--to <url>', 'the broker: amqp://user:password@host:5672 or nats://host:4222')
    .option(
      '--exchange <name>',
      'RabbitMQ: the exchange to publish to, the topic as routing key (default: the default exchange)',
    )
    .option('--mandatory', 'RabbitMQ: count a message no queue is bound for as failed (retried, then dead)')
    .option('--batch <n>', 'messages a pass publishes at most, 1 to 1000 (default 100)')
    .option('--poll <duration>', 'pause when nothing is due (default 500ms)')
    .option('--max-attempts <n>', 'publish attempts before a message is dead (default 10)')
    .option('--cleanup-after <duration>', 'delete published messages this old (default 7d)')
    .option('--once', 'publish what is due, then exit')
    .action(async (options) => (await import('../outbox/relay-command.js')).runRelay(options));

  outbox
    .command('status')
    .description('How many messages are pending, published (kept until cleanup) and dead.')
    .requiredOption('--db <url>', DB_HELP)
    .option('--table <name>', TABLE_HELP)
    .option('--json', 'one JSON object')
    .action(async (options) => (await import('../outbox/inspect.js')).outboxStatus(options));

  outbox
    .command('dead')
    .description('List dead messages (publish failed --max-attempts times), oldest first, with their last error.')
    .requiredOption('--db <url>', DB_HELP)
    .option('--table <name>', TABLE_HELP)
    .option('--limit <n>', 'at most this many (default 100)')
    .option('--json', 'one JSON object per line')
    .action(async (options) => (await import('../outbox/inspect.js')).outboxDead(options));

  outbox
    .command('revive <id>')
    .description('Make a dead message pending again (attempts reset): the next relay pass publishes it.')
    .requiredOption('--db <url>', DB_HELP)
    .option('--table <name>', TABLE_HELP)
    .action(async (id: string, options) => (await import('../outbox/inspect.js')).outboxRevive(id, options));
}
