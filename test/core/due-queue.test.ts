// The first-in first-out queue behind the engine's shared timers (src/core/due-queue.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type DueEntry, DueQueue } from '../../src/core/due-queue.js';

const entry = (dueMs: number, name: string) => ({ dueMs, settled: false, name });

describe('due queue', () => {
  it('takes out only entries due, in order, and skips the settled ones', () => {
    const queue = new DueQueue<DueEntry & { name: string }>();
    const [a, b, c, d] = [entry(10, 'a'), entry(20, 'b'), entry(30, 'c'), entry(40, 'd')];
    for (const e of [a, b, c, d]) queue.push(e);
    queue.settle(b);
    queue.settle(b); // twice is quiet
    assert.equal(queue.size, 3);
    assert.equal(queue.takeDue(5), undefined, 'nothing due yet');
    assert.equal(queue.takeDue(30)?.name, 'a');
    assert.equal(queue.takeDue(30)?.name, 'c', 'b was settled: skipped');
    assert.equal(queue.takeDue(30), undefined, 'd is not due');
    assert.equal(queue.size, 1);
    assert.equal(c.settled, true, 'an entry taken out is settled');
    queue.settle(c); // settled already: the count does not move
    assert.equal(queue.size, 1);
    queue.push(c); // pushed again with its old time, as a heartbeat is after its beat
    c.dueMs = 50;
    assert.equal(queue.takeDue(45)?.name, 'd');
    assert.equal(queue.takeDue(50)?.name, 'c');
    assert.equal(queue.size, 0);
  });

  it('keeps its waiting entries through many that settle out of order', () => {
    const queue = new DueQueue<DueEntry & { name: string }>();
    const held = entry(0, 'held');
    queue.push(held);
    const others = Array.from({ length: 5000 }, (_, i) => entry(i + 1, `e${i}`));
    for (const e of others) queue.push(e);
    for (const e of others) queue.settle(e);
    assert.equal(queue.size, 1);
    queue.push(entry(9999, 'late'));
    assert.equal(queue.takeDue(10_000)?.name, 'held');
    assert.equal(queue.takeDue(10_000)?.name, 'late');
    assert.equal(queue.takeDue(10_000), undefined);
    assert.equal(queue.size, 0);
  });
});
