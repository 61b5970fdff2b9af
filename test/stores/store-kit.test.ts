import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, IdempotencyError, isIdempotencyError } from '../../src/core/errors.js';
import { checkListLimit, checkSweepLimit, StoreOperations } from '../../src/store-kit/index.js';

/** The kit's one wrapper around every store operation, and its checks of the contract's limits. */

function hasCode(code: ErrorCode, text?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(isIdempotencyError(error, code), `expected ${code}, got ${String(error)}`);
    if (text !== undefined) assert.match(error.message, text);
    return true;
  };
}

interface FakeClient {
  ended: boolean;
}

/** StoreOperations over a client the store opens itself, counting opens and preparations. */
function operations(over: { failOpens?: number; misconfiguration?: (error: unknown) => string | undefined } = {}): {
  ops: StoreOperations<FakeClient>;
  opened: FakeClient[];
  prepared: () => number;
} {
  const opened: FakeClient[] = [];
  let prepared = 0;
  let failures = over.failOpens ?? 0;
  const ops = new StoreOperations<FakeClient>({
    store: 'fake',
    className: 'FakeStore',
    given: undefined,
    openOwn: async () => {
      if (failures-- > 0) throw new Error('connect ECONNREFUSED');
      const client = { ended: false };
      opened.push(client);
      return {
        client,
        end: async () => {
          client.ended = true;
        },
      };
    },
    prepare: async () => {
      prepared += 1;
    },
    ...(over.misconfiguration === undefined ? {} : { misconfiguration: over.misconfiguration }),
  });
  return { ops, opened, prepared: () => prepared };
}

describe('StoreOperations', () => {
  it('opens and prepares the client once, on first use, and tries again after a failed open', async () => {
    const { ops, opened, prepared } = operations({ failOpens: 1 });
    assert.equal(opened.length, 0, 'nothing is opened before the first operation');
    await assert.rejects(
      ops.run('get', async () => 1),
      hasCode(ErrorCode.STORE_UNAVAILABLE, /\[fake\] get failed/),
    );
    assert.equal(await ops.run('get', async () => 2), 2);
    assert.equal(await ops.run('claim', () => 3), 3, 'a synchronous body works too');
    assert.equal(opened.length, 1);
    assert.equal(prepared(), 1);
    await ops.close();
    assert.equal(opened[0]?.ended, true, 'close ends the client the store opened');
  });

  it('maps driver errors: configuration mistakes, outages, and Idem errors left as they are', async () => {
    const { ops } = operations({
      misconfiguration: (error) => (String(error).includes('password') ? 'check the password' : undefined),
    });
    const wrongPassword = new Error('password authentication failed');
    await assert.rejects(
      ops.run('claim', async () => Promise.reject(wrongPassword)),
      (error: unknown) => {
        hasCode(ErrorCode.STORE_MISCONFIGURED, /\[fake\] claim refused: .*check the password/)(error);
        assert.equal((error as Error).cause, wrongPassword);
        return true;
      },
    );
    await assert.rejects(
      ops.run('list', async () => Promise.reject(new Error('socket hang up'))),
      hasCode(ErrorCode.STORE_UNAVAILABLE, /\[fake\] list failed: socket hang up/),
    );
    const own = new IdempotencyError(ErrorCode.INVALID_OPTIONS, '[idem] [fake] bad limit');
    await assert.rejects(
      ops.run('list', async () => Promise.reject(own)),
      (error) => error === own,
    );
  });

  it("words an error the store explains itself in the store's own way", async () => {
    const ops = new StoreOperations<object>({
      store: 'fake',
      className: 'FakeStore',
      given: {},
      openOwn: async () => Promise.reject(new Error('unused')),
      explain: (operation, error) =>
        String(error).includes('BUSY')
          ? new IdempotencyError(ErrorCode.STORE_UNAVAILABLE, `[idem] [fake] ${operation}: the file is locked`)
          : undefined,
    });
    await assert.rejects(
      ops.run('claim', () => {
        throw new Error('SQLITE_BUSY');
      }),
      hasCode(ErrorCode.STORE_UNAVAILABLE, /claim: the file is locked/),
    );
    await assert.rejects(
      ops.run('get', () => {
        throw new Error('disk I/O error');
      }),
      hasCode(ErrorCode.STORE_UNAVAILABLE, /get failed: disk I\/O error/),
    );
  });

  it('refuses every operation after close with STORE_CLOSED, and reports one that close cut short the same way', async () => {
    const { ops, opened } = operations();
    let closeDuring: Promise<void> | undefined;
    // The client is ended while the operation runs (a pool ended under a query): not an outage.
    const cutShort = ops.run('extend', async (client) => {
      closeDuring = ops.close();
      await closeDuring;
      assert.equal(client.ended, true);
      throw new Error('Cannot use a pool after calling end on the pool');
    });
    await assert.rejects(cutShort, hasCode(ErrorCode.STORE_CLOSED, /\[fake\] extend after close\(\): .*FakeStore/));
    await assert.rejects(
      ops.run('claim', async () => 1),
      hasCode(ErrorCode.STORE_CLOSED, /claim after close\(\)/),
    );
    await ops.close();
    assert.equal(opened.length, 1, 'a closed store opens nothing again');
  });

  it('needs a client or a way to open one', () => {
    assert.throws(
      () => new StoreOperations({ store: 'fake', className: 'FakeStore', given: undefined }),
      hasCode(ErrorCode.INVALID_OPTIONS, /`given` client or an `openOwn`/),
    );
  });

  it('gives a client passed in, with no openOwn, and leaves it open on close', async () => {
    const given = { ended: false };
    const ops = new StoreOperations<FakeClient>({ store: 'fake', className: 'FakeStore', given: () => given });
    assert.equal(await ops.run('get', async (client) => client), given);
    await ops.close();
    assert.equal(given.ended, false);
    assert.equal(ops.closed, true);
  });
});

describe('the limits of list and sweep', () => {
  it('takes list limits from 1 to 1000, 100 by default, and refuses the rest with INVALID_OPTIONS', () => {
    assert.equal(checkListLimit('fake', undefined), 100);
    assert.equal(checkListLimit('fake', 1), 1);
    assert.equal(checkListLimit('fake', 1000), 1000);
    for (const limit of [0, -1, 1.5, 1001, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => checkListLimit('fake', limit),
        hasCode(ErrorCode.INVALID_OPTIONS, /\[fake\] list\(\): limit/),
      );
    }
    assert.equal(checkListLimit('fake', 7, 'runs'), 7);
    assert.throws(
      () => checkListLimit('fake', 0, 'runs'),
      hasCode(ErrorCode.INVALID_OPTIONS, /\[fake\] runs\(\): limit/),
    );
  });

  it('takes sweep limits of at least 1, 1000 by default, and refuses the rest with INVALID_OPTIONS', () => {
    assert.equal(checkSweepLimit('fake', undefined), 1000);
    assert.equal(checkSweepLimit('fake', 1), 1);
    assert.equal(checkSweepLimit('fake', 50_000), 50_000);
    for (const limit of [0, -1, 2.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => checkSweepLimit('fake', limit), hasCode(ErrorCode.INVALID_OPTIONS, /\[fake\] sweep\(\)/));
    }
  });
});
