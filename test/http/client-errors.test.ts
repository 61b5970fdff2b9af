import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hasClientErrorStatus, isClientGone } from '../../src/adapters/shared/client-errors.js';

describe('client errors, one test for every adapter', () => {
  it('tells a client that went away from a failure of the server', () => {
    for (const code of ['ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE']) {
      assert.equal(isClientGone(Object.assign(new Error('gone'), { code })), true, code);
    }
    assert.equal(isClientGone(new Error('aborted')), true, "Node's aborted request body");
    for (const error of [new Error('boom'), Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), null, 'aborted']) {
      assert.equal(isClientGone(error), false, String(error));
    }
  });

  it('tells a thrown 4xx answer from a failure', () => {
    assert.equal(hasClientErrorStatus({ statusCode: 404 }), true);
    assert.equal(hasClientErrorStatus({ status: 422 }), true);
    for (const error of [{ status: 500 }, { statusCode: 302 }, new Error('boom'), null, { status: '404' }]) {
      assert.equal(hasClientErrorStatus(error), false, JSON.stringify(error));
    }
  });
});
