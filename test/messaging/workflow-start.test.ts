// A message handler that starts a durable workflow: the run's id is the message id, so every
// redelivery, and every consumer that receives the message, attaches to the one run.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Inbox } from '../../src/messaging/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { Workflows } from '../../src/workflow/index.js';

describe('a message that starts a workflow', () => {
  it('runs one workflow and ships once for a message delivered five times to two consumers', async () => {
    const store = new MemoryStore();
    const shipped: string[] = [];
    const consumers = [0, 1].map(() => {
      const workflows = new Workflows({ store });
      const fulfil = workflows.define('fulfil', async (ctx, order: { id: string }) => {
        await ctx.step('ship', async () => shipped.push(order.id));
        return `shipped ${order.id}`;
      });
      const inbox = new Inbox({ store, consumer: 'orders', waitMs: 5_000 });
      // Acknowledge once the run is recorded: the workflow itself is durable from here on.
      return (message: { id: string }) =>
        inbox.consume({ id: message.id }, async () => (await fulfil.start(`order-${message.id}`, message)).workflowId);
    });
    const deliveries = [0, 1, 0, 1, 1].map((consumer) => consumers[consumer]?.({ id: 'o-7' }));
    const outcomes = await Promise.all(deliveries);
    assert.equal(outcomes.filter((outcome) => outcome?.kind === 'processed').length, 1);
    assert.ok(outcomes.every((outcome) => outcome?.kind === 'processed' || outcome?.kind === 'duplicate'));
    const workflows = new Workflows({ store });
    workflows.define('fulfil', async () => '');
    assert.equal(await workflows.handle('order-o-7').result(), 'shipped o-7');
    assert.deepEqual(shipped, ['o-7']);
  });
});
