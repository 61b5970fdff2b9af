// Found in review: ways a consumer built on the inbox could crash, or leave a processed message
// unsettled and redelivered for ever.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { AdminStore } from '../../src/core/store.js';
import { Inbox, jetStreamHandler } from '../../src/messaging/index.js';
import { createStore, dropStore } from '../stores/sqlite.factory.js';
import { natsUrl } from './brokers.js';

const run = randomBytes(4).toString('hex');
const namespace = `review_inbox_${run}`;
let store: AdminStore;

before(async () => {
  store = await createStore(namespace);
});
after(async () => {
  await store.close();
  await dropStore(namespace);
});

describe('the inbox under review', () => {
  it('answers a processed message whose stored value cannot be read back as a duplicate, not an error', async () => {
    const consumer = `unreadable-${run}`;
    await new Inbox({ store, consumer }).consume({ id: 'm-1' }, () => ({ total: 3 }));
    const changed = new Inbox({
      store,
      consumer,
      serializer: {
        encode: () => new Uint8Array(),
        decode: () => {
          throw new Error('not the format this serializer writes');
        },
      },
    });
    let ran = 0;
    const outcome = await changed.consume({ id: 'm-1' }, () => {
      ran += 1;
    });
    assert.deepEqual(outcome, { kind: 'duplicate', value: undefined });
    assert.equal(ran, 0);
  });
});

describe('the JetStream adapter under review', () => {
  it('settles a message and reports it when the retryDelayMs function throws, rather than rejecting', async () => {
    const nc = await connect({ servers: natsUrl });
    try {
      const jsm = await jetstreamManager(nc);
      const stream = `IDEM_REVIEW_BACKOFF_${run}`;
      const subject = `idem.review.backoff.${run}`;
      await jsm.streams.add({ name: stream, subjects: [subject] });
      await jsm.consumers.add(stream, { durable_name: 'worker', ack_policy: AckPolicy.Explicit });
      try {
        await jetstream(nc).publish(subject, 'fails');
        const message = await (await jetstream(nc).consumers.get(stream, 'worker')).next();
        assert.ok(message, 'the message was pulled');
        const errors: unknown[] = [];
        const onMessage = jetStreamHandler({
          inbox: new Inbox({ store, consumer: `backoff-${run}` }),
          retryDelayMs: () => {
            throw new Error('no backoff for you');
          },
          onError: (error) => errors.push(error),
          handler: () => {
            throw new Error('card declined');
          },
        });
        assert.equal(await onMessage(message), 'nak');
        assert.deepEqual(
          errors.map((error) => (error as Error).message),
          ['no backoff for you', 'card declined'],
        );
      } finally {
        await jsm.streams.delete(stream);
      }
    } finally {
      await nc.close();
    }
  });
});
