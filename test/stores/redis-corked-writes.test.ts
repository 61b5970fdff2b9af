import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { describe, it } from 'node:test';
import { setImmediate as nextCheck } from 'node:timers/promises';
import { CorkedWrites } from '../../src/stores/redis/corked-writes.js';

/** A socket that only records cork and uncork calls. */
function fakeSocket(writable = true) {
  const calls: string[] = [];
  const stream = {
    writable,
    cork: () => calls.push('cork'),
    uncork: () => calls.push('uncork'),
  } as unknown as Duplex;
  return { stream, calls };
}

/** A command whose reply the test gives. */
function pending<T>() {
  let answer!: (value: T) => void;
  let refuse!: (error: Error) => void;
  const promise = new Promise<T>((resolve, reject) => {
    answer = resolve;
    refuse = reject;
  });
  return { promise, answer, refuse };
}

describe('CorkedWrites (the Redis store own client)', () => {
  it('writes a lone command at once, without corking the socket', async () => {
    const { stream, calls } = fakeSocket();
    const writes = new CorkedWrites({ stream });
    assert.equal(await writes.send(async () => 'OK'), 'OK');
    assert.equal(await writes.send(async () => 'OK'), 'OK');
    assert.deepEqual(calls, []);
  });

  it('corks the socket once for the commands sent while another is in flight, and uncorks it on the next check phase', async () => {
    const { stream, calls } = fakeSocket();
    const writes = new CorkedWrites({ stream });
    const first = pending<string>();
    const replies = [writes.send(() => first.promise)];
    for (let i = 0; i < 5; i++) replies.push(writes.send(async () => `r${i}`));
    assert.deepEqual(calls, ['cork']);
    await nextCheck();
    assert.deepEqual(calls, ['cork', 'uncork']);
    first.answer('r');
    assert.deepEqual(await Promise.all(replies), ['r', 'r0', 'r1', 'r2', 'r3', 'r4']);
  });

  it('counts a refused command as answered, so the next lone command is not corked', async () => {
    const { stream, calls } = fakeSocket();
    const writes = new CorkedWrites({ stream });
    const refused = pending<string>();
    const reply = writes.send(() => refused.promise);
    refused.refuse(new Error('down'));
    await assert.rejects(reply, /down/);
    await writes.send(async () => 'OK');
    assert.deepEqual(calls, []);
  });

  it('leaves a socket that cannot be written alone', async () => {
    const { stream, calls } = fakeSocket(false);
    const writes = new CorkedWrites({ stream });
    const first = pending<string>();
    const replies = [writes.send(() => first.promise), writes.send(async () => 'b')];
    first.answer('a');
    assert.deepEqual(await Promise.all(replies), ['a', 'b']);
    assert.deepEqual(calls, []);
  });
});
