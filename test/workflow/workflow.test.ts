import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import type { JournalStore } from '../../src/core/journal.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { type WorkflowContext, Workflows, type WorkflowsOptions } from '../../src/workflow/index.js';

const withCode = (code: ErrorCode, pattern?: RegExp) => (error: unknown) => {
  assert.ok(isIdempotencyError(error, code), `expected ${code}, got ${String(error)}`);
  if (pattern) assert.match(error.message, pattern);
  return true;
};

/** Two processes' worth of workflows over one store: `first` starts runs, `second` recovers them. */
function pair(options: Partial<WorkflowsOptions> = {}) {
  const store = (options.store ?? new MemoryStore()) as JournalStore;
  const settings = { store, leaseMs: 150, heartbeatMs: 0, retentionMs: 60_000, ...options };
  return { store, first: new Workflows(settings), second: new Workflows(settings) };
}

/** A step that never ends: the holder "hangs" like a stopped process, so its lease runs out. */
const hang = () => new Promise<never>(() => {});

/** Waits for a lease of `ms` to run out, then lets `workflows` recover what is due. */
async function recoverAfter(workflows: Workflows, ms: number): Promise<number> {
  await sleep(ms + 20);
  const taken = await workflows.recoverDue();
  await workflows.drain();
  return taken;
}

describe('workflows: start, steps, replay', () => {
  it('runs each step once, and a second start of the id gives the recorded result without running anything', async () => {
    const { first } = pair();
    const calls: string[] = [];
    const order = first.define('order', async (ctx, input: { id: string }) => {
      const a = await ctx.step('create', () => {
        calls.push('create');
        return { order: input.id };
      });
      const b = await ctx.step('charge', (step) => {
        calls.push('charge');
        return { charged: a.order, key: step.key };
      });
      return { ...b, at: new Date(5) };
    });
    const result = await order.run('order-1', { id: '1' });
    assert.equal(result.charged, '1');
    assert.ok(result.at instanceof Date);
    assert.match(result.key, /^idem_[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(await order.run('order-1', { id: '1' }), result);
    assert.deepEqual(calls, ['create', 'charge']);
    const view = await first.status('order-1');
    assert.equal(view.state, 'completed');
    assert.deepEqual(
      view.steps.map((step) => [step.name, step.state, step.attempts]),
      [
        ['create', 'done', 1],
        ['charge', 'done', 1],
      ],
    );
  });

  it('refuses the same id with other input, or with refuse', async () => {
    const { first } = pair();
    const wf = first.define('w', async (_ctx, n: number) => n * 2);
    assert.equal(await wf.run('id-1', 2), 4);
    await assert.rejects(wf.start('id-1', 3), withCode(ErrorCode.WORKFLOW_CONFLICT, /other input/));
    await assert.rejects(wf.start('id-1', 2, { ifExists: 'refuse' }), withCode(ErrorCode.WORKFLOW_EXISTS));
    await assert.rejects(first.status('nope'), withCode(ErrorCode.WORKFLOW_NOT_FOUND));
  });

  it('resumes a run whose holder stopped: recorded steps are not run again, the derived key is the same', async () => {
    const { first, second } = pair();
    const runs = { a: 0, b: 0 };
    const keys: string[] = [];
    const body = (stopAtB: boolean) => async (ctx: WorkflowContext) => {
      await ctx.step('a', () => ++runs.a);
      return ctx.step('b', async (step) => {
        keys.push(step.key);
        runs.b += 1;
        if (stopAtB) return hang();
        return 'done';
      });
    };
    const wf = first.define('resume', body(true));
    second.define('resume', body(false));
    const handle = await wf.start('r-1', null);
    assert.equal(await recoverAfter(second, 150), 1);
    assert.equal(await handle.result(), 'done');
    assert.deepEqual(runs, { a: 1, b: 2 });
    assert.equal(keys[0], keys[1], 'the step key is stable across holders');
    assert.equal((await second.status('r-1')).attempts, 2);
  });

  it('fences a stale holder: its late result is not recorded and it runs nothing more', async () => {
    const { first, second } = pair();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const effects: string[] = [];
    const wf = first.define('fence', async (ctx) => {
      await ctx.step('slow', async () => {
        await gate;
        effects.push('slow by first');
        return 'first';
      });
      await ctx.step('after', () => effects.push('after by first'));
      return 'first';
    });
    second.define('fence', async (ctx) => {
      const slow = await ctx.step('slow', () => {
        effects.push('slow by second');
        return 'second';
      });
      await ctx.step('after', () => effects.push('after by second'));
      return slow;
    });
    await wf.start('f-1', null);
    assert.equal(await recoverAfter(second, 150), 1);
    assert.equal(await second.handle('f-1').result(), 'second');
    release();
    await first.drain();
    assert.deepEqual(effects, ['slow by second', 'after by second', 'slow by first']);
    const view = await first.status('f-1');
    assert.equal(view.steps[0]?.value, 'second');
    assert.equal(await first.handle('f-1').result(), 'second');
  });
});
