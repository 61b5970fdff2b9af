// The proof of the broker adapters: a consumer killed with SIGKILL in the middle of a batch, its
// messages redelivered to a fresh consumer, and a PostgreSQL ledger that shows every message's
// effect exactly once. On RabbitMQ and on JetStream; with the atomic SqlInbox (the ledger row in
// the inbox's transaction) and with the Inbox on Redis (an idempotent ledger write, since a crash
// between the effect and the record re-runs the handler once the lease ends).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AckPolicy, jetstreamManager } from '@nats-io/jetstream';
import { connect as connectNats, headers, nanos } from '@nats-io/transport-node';
import amqp from 'amqplib';
import pg from 'pg';
import { runChild } from '../kill-child.js';
import { postgresUrl } from '../stores/postgres.factory.js';
import { dropStore } from '../stores/redis.factory.js';
import { amqpUrl, natsUrl } from './brokers.js';
import { type CrashJob, ledgerDdl, startConsumer, tablesOf } from './fixtures/inbox-crash-consumer.js';

const workerPath = new URL('./fixtures/inbox-crash-worker.ts', import.meta.url).pathname;
const MESSAGES = 60;
const KILL_AFTER = 25;
const CONCURRENCY = 6;

let pool: pg.Pool;
before(() => {
  pool = new pg.Pool({ connectionString: postgresUrl, max: 4 });
});
after(async () => {
  await pool.end();
});

/** Resolves when `check` holds, looking every 50 ms, or rejects after 30 s saying what was awaited. */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const idOf = (i: number) => `pay-${i}`;

/** A broker source with the batch published on it, and how to tell that every message of it is settled. */
interface Source {
  name: string;
  /** True when the broker holds no message of the batch that is not acknowledged. */
  drained(): Promise<boolean>;
  close(): Promise<void>;
}

async function amqpSource(prefix: string): Promise<Source> {
  const connection = await amqp.connect(amqpUrl);
  const channel = await connection.createChannel();
  const queue = `idem.crash.${prefix}`;
  await channel.assertQueue(queue, { durable: false });
  for (let i = 0; i < MESSAGES; i++) {
    channel.sendToQueue(queue, Buffer.from(JSON.stringify({ amount: i + 1 })), { messageId: idOf(i) });
  }
  return {
    name: queue,
    // Messages delivered and not acknowledged do not show here: the caller stops its consumer first.
    drained: async () => (await channel.checkQueue(queue)).messageCount === 0,
    close: async () => {
      await channel.deleteQueue(queue);
      await connection.close();
    },
  };
}

async function jetStreamSource(prefix: string): Promise<Source> {
  const nc = await connectNats({ servers: natsUrl });
  const jsm = await jetstreamManager(nc);
  const stream = `IDEM_CRASH_${prefix.toUpperCase()}`;
  const subject = `idem.crash.${prefix}`;
  await jsm.streams.add({ name: stream, subjects: [subject] });
  await jsm.consumers.add(stream, { durable_name: 'worker', ack_policy: AckPolicy.Explicit, ack_wait: nanos(1500) });
  const js = jsm.jetstream();
  for (let i = 0; i < MESSAGES; i++) {
    const h = headers();
    h.set('Nats-Msg-Id', idOf(i));
    await js.publish(subject, JSON.stringify({ amount: i + 1 }), { headers: h });
  }
  return {
    name: stream,
    drained: async () => {
      const info = await jsm.consumers.info(stream, 'worker');
      return info.num_pending + info.num_ack_pending === 0;
    },
    close: async () => {
      await jsm.streams.delete(stream);
      await nc.close();
    },
  };
}

interface Row {
  message_id: string;
  n: number;
  pids: number[];
}

async function countsOf(table: string): Promise<Map<string, Row>> {
  const { rows } = await pool.query<Row>(
    `SELECT message_id, count(*)::int AS n, array_agg(pid) AS pids FROM ${table} GROUP BY message_id`,
  );
  return new Map(rows.map((row) => [row.message_id, row]));
}

async function scenario(
  broker: CrashJob['broker'],
  inbox: CrashJob['inbox'],
  at: 'effect' | 'ack',
  diagnostic: (message: string) => void,
): Promise<void> {
  const prefix = `ic_${randomBytes(4).toString('hex')}`;
  const { ledger, invocations } = tablesOf(prefix);
  const source = broker === 'amqp' ? await amqpSource(prefix) : await jetStreamSource(prefix);
  const job: CrashJob = { broker, inbox, source: source.name, prefix, concurrency: CONCURRENCY, leaseMs: 1000 };
  for (const ddl of ledgerDdl(job)) await pool.query(ddl);
  try {
    const child = await runChild(workerPath, job, `${at}:${KILL_AFTER}`);
    assert.equal(child.signal, 'SIGKILL', `the child was killed at ${at} (stdout: ${child.stdout})`);
    const killedAt = /killed at (?:effect|ack) of (\S+)/.exec(child.stdout)?.[1];
    assert.ok(killedAt !== undefined, child.stdout);

    // The fresh consumer takes over the batch: the messages the child had not acknowledged are redelivered.
    const consumer = await startConsumer(job);
    try {
      await until('every message in the ledger', async () => (await countsOf(ledger)).size === MESSAGES);
      await until(
        'every message settled',
        async () => consumer.unsettled() === 0 && (await source.drained()) && consumer.unsettled() === 0,
      );
    } finally {
      await consumer.stop();
    }
    assert.ok(await source.drained(), 'no message is left unacknowledged once the consumer stopped');

    const booked = await countsOf(ledger);
    const calls = await countsOf(invocations);
    const childPid = [...calls.values()].flatMap((row) => row.pids).find((pid) => pid !== process.pid);
    assert.ok(childPid !== undefined, 'the child handled messages before it died');
    for (let i = 0; i < MESSAGES; i++) {
      assert.equal(booked.get(idOf(i))?.n, 1, `${idOf(i)} is in the ledger once`);
    }
    const { rows } = await pool.query<{ total: number }>(`SELECT sum(amount)::int AS total FROM ${ledger}`);
    assert.equal(rows[0]?.total, (MESSAGES * (MESSAGES + 1)) / 2, 'the ledger adds up to every payment once');
    assert.ok(
      [...booked.values()].some((row) => row.pids[0] === childPid) &&
        [...booked.values()].some((row) => row.pids[0] === process.pid),
      'the child was killed in the middle of the batch: it booked some payments and the fresh consumer the rest',
    );

    // A handler ran twice only for a message in flight in the child when it died: once there, once here.
    const rerun = [...calls.values()].filter((row) => row.n > 1);
    for (const row of rerun) {
      assert.deepEqual(row.pids.sort(), [childPid, process.pid].sort(), `${row.message_id}: once in each process`);
      if (inbox === 'sql') {
        assert.equal(
          booked.get(row.message_id)?.pids[0],
          process.pid,
          `${row.message_id}: the child's write rolled back`,
        );
      }
    }
    const byChild = [...booked.values()].filter((row) => row.pids[0] === childPid).length;
    diagnostic(`the child booked ${byChild} payments; ${rerun.length} handlers ran again in the fresh consumer`);
    assert.ok(rerun.length <= CONCURRENCY, `at most ${CONCURRENCY} messages were in flight (${rerun.length} re-run)`);
    if (at === 'ack') {
      assert.equal(calls.get(killedAt)?.n, 1, 'the message recorded but not acknowledged was acked without running');
    } else {
      assert.equal(calls.get(killedAt)?.n, 2, 'the message killed between its effect and its record ran again');
      // Its effect: rolled back with the transaction (SqlInbox), or kept and absorbed by ON CONFLICT (Inbox).
      assert.equal(booked.get(killedAt)?.pids[0], inbox === 'sql' ? process.pid : childPid);
    }
  } finally {
    await source.close();
    await pool.query(`DROP TABLE IF EXISTS ${ledger}, ${invocations}, ${prefix}_inbox`);
    await dropStore(prefix);
  }
}

for (const broker of ['amqp', 'jetstream'] as const) {
  describe(`a ${broker === 'amqp' ? 'RabbitMQ' : 'JetStream'} consumer killed in the middle of a batch`, () => {
    for (const inbox of ['sql', 'store'] as const) {
      const through = inbox === 'sql' ? 'the atomic SqlInbox' : 'the Inbox on Redis and an idempotent ledger write';
      it(`books every payment once through ${through}, killed between an effect and its record`, async (t) => {
        await scenario(broker, inbox, 'effect', (message) => t.diagnostic(message));
      });
      it(`books every payment once through ${through}, killed between a record and its ack`, async (t) => {
        await scenario(broker, inbox, 'ack', (message) => t.diagnostic(message));
      });
    }
  });
}
