// Found in review: ways a consumer built on the inbox could crash, or leave a processed message
// unsettled and redelivered for ever.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { AdminStore } from '../../src/core/store.js';
import { Inbox } from '../../src/messaging/index.js';
import { createStore, dropStore } from '../stores/sqlite.factory.js';

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
