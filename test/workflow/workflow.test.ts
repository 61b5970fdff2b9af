import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fingerprintOf } from '../../src/core/canonical.js';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import type { JournalStore } from '../../src/core/journal.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { type WorkflowContext, Workflows, type WorkflowsOptions } from '../../src/workflow/index.js';
import { runKeyOf } from '../../src/workflow/keys.js';

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

  it('starts a run whose first starter died between its claim and its start entry', async () => {
    const { store, first } = pair();
    const wf = first.define('late-start', async (ctx, n: number) => ctx.step('double', () => n * 2));
    const now = Date.now();
    const claimed = await store.claim({
      key: runKeyOf('ls-1'),
      fingerprint: fingerprintOf({ workflow: 'late-start', input: 21 }),
      token: 'dead-starter',
      nowMs: now,
      leaseExpiresAtMs: now + 50,
      expiresAtMs: now + 60_000,
    });
    assert.equal(claimed.claimed, true);
    await sleep(60);
    assert.equal(await first.recoverDue(), 0, 'a run without a start entry is no run a worker can resume');
    assert.equal(await wf.run('ls-1', 21), 42);
    assert.equal((await first.status('ls-1')).attempts, 2);
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

describe('workflows: failures, retries and undos', () => {
  it('retries a failing step with backoff, then records its result; a final error is not retried', async () => {
    const { first } = pair();
    let flaky = 0;
    let fatal = 0;
    const wf = first.define('retry', async (ctx) => {
      const value = await ctx.step(
        'flaky',
        (step) => {
          flaky += 1;
          if (step.attempt < 3) throw new Error(`flake ${step.attempt}`);
          return step.attempt;
        },
        { retries: { maxAttempts: 5, baseMs: 1, maxMs: 5 } },
      );
      await ctx.step(
        'fatal',
        () => {
          fatal += 1;
          throw Object.assign(new Error('card declined'), { code: 'declined' });
        },
        {
          retries: { maxAttempts: 5, baseMs: 1 },
          isFinal: (error) => (error as { code?: string }).code === 'declined',
        },
      );
      return value;
    });
    await assert.rejects(wf.run('retry-1', null), (error: unknown) => {
      assert.ok(isIdempotencyError(error, ErrorCode.WORKFLOW_FAILED));
      assert.match(error.message, /card declined/);
      assert.equal((error.cause as { code?: string }).code, 'declined');
      return true;
    });
    assert.equal(flaky, 3);
    assert.equal(fatal, 1);
    const view = await first.status('retry-1');
    assert.equal(view.state, 'failed');
    assert.deepEqual(
      view.steps.map((step) => [step.name, step.state, step.attempts]),
      [
        ['flaky', 'done', 3],
        ['fatal', 'failed', 1],
      ],
    );
  });

  it('times a step out with STEP_TIMEOUT and retries it', async () => {
    const { first } = pair();
    let calls = 0;
    const wf = first.define('timeout', async (ctx) =>
      ctx.step(
        'slow',
        async (step) => {
          calls += 1;
          if (step.attempt === 1) await new Promise((resolve) => step.signal.addEventListener('abort', resolve));
          return 'fast enough';
        },
        { timeoutMs: 30, retries: { maxAttempts: 2, baseMs: 1 } },
      ),
    );
    assert.equal(await wf.run('t-1', null), 'fast enough');
    assert.equal(calls, 2);
    const [step] = (await first.status('t-1')).steps;
    assert.equal(step?.attempts, 2);
  });

  it('runs the undos of finished steps in reverse order, each once, when the workflow gives up', async () => {
    const { first } = pair();
    const log: string[] = [];
    const wf = first.define('saga', async (ctx) => {
      const order = await ctx.step('order', () => 'o-1', { compensate: (id) => log.push(`cancel ${id}`) });
      const charge = await ctx.step('charge', () => 'ch-1', { compensate: (id) => log.push(`refund ${id}`) });
      await ctx.step('note', () => 'no undo');
      await ctx.step('ship', () => Promise.reject(new Error('out of stock')), { retries: { maxAttempts: 1 } });
      return [order, charge];
    });
    await assert.rejects(wf.run('saga-1', null), withCode(ErrorCode.WORKFLOW_FAILED, /out of stock/));
    assert.deepEqual(log, ['refund ch-1', 'cancel o-1']);
    const view = await first.status('saga-1');
    assert.deepEqual(
      view.steps.map((step) => [step.name, step.undone === true]),
      [
        ['order', true],
        ['charge', true],
        ['note', false],
        ['ship', false],
      ],
    );
    await assert.rejects(wf.run('saga-1', null), withCode(ErrorCode.WORKFLOW_FAILED));
    assert.equal(log.length, 2, 'a second start replays the failure, undoing nothing again');
  });

  it('re-runs a failed run from the start with rerun-failed, with new derived keys', async () => {
    const { first } = pair();
    const keys: string[] = [];
    let fail = true;
    const wf = first.define('rerun', async (ctx) =>
      ctx.step(
        'pay',
        (step) => {
          keys.push(step.key);
          if (fail) throw new Error('down');
          return 'paid';
        },
        { retries: { maxAttempts: 1 } },
      ),
    );
    await assert.rejects(wf.run('rr-1', null), withCode(ErrorCode.WORKFLOW_FAILED));
    fail = false;
    await assert.rejects(wf.run('rr-1', null), withCode(ErrorCode.WORKFLOW_FAILED), 'attach replays the failure');
    assert.equal(await wf.run('rr-1', null, { ifExists: 'rerun-failed' }), 'paid');
    assert.equal(keys.length, 2);
    assert.notEqual(keys[0], keys[1]);
    assert.equal(await wf.run('rr-1', null, { ifExists: 'rerun-failed' }), 'paid', 'a completed run is not re-run');
    assert.equal(keys.length, 2);
  });
});

describe('workflows: unknown outcomes', () => {
  it('asks reconcile when a step recorded its intent but not its result, and takes what it found', async () => {
    const { first, second } = pair();
    const provider = new Map<string, string>();
    let calls = 0;
    const body = (hangAfterEffect: boolean) => async (ctx: WorkflowContext) =>
      ctx.step(
        'charge',
        async (step) => {
          calls += 1;
          provider.set(step.key, 'ch_1');
          if (hangAfterEffect) return hang();
          return 'ch_1';
        },
        {
          reconcile: (step) => {
            const found = provider.get(step.key);
            return found === undefined ? { done: false } : { done: true, value: found };
          },
        },
      );
    const wf = first.define('reconcile', body(true));
    second.define('reconcile', body(false));
    await wf.start('rc-1', null);
    assert.equal(await recoverAfter(second, 150), 1);
    assert.equal(await second.handle('rc-1').result(), 'ch_1');
    assert.equal(calls, 1, 'the effect was found, not made again');
  });

  it('retries with the same key when reconcile finds nothing', async () => {
    const { first, second } = pair();
    const keys: string[] = [];
    const body = (hangBeforeEffect: boolean) => async (ctx: WorkflowContext) =>
      ctx.step(
        'charge',
        async (step) => {
          keys.push(step.key);
          if (hangBeforeEffect) return hang();
          return 'ch_2';
        },
        { reconcile: () => ({ done: false }) },
      );
    const wf = first.define('reconcile-none', body(true));
    second.define('reconcile-none', body(false));
    await wf.start('rc-2', null);
    assert.equal(await recoverAfter(second, 150), 1);
    assert.equal(await second.handle('rc-2').result(), 'ch_2');
    assert.equal(keys.length, 2);
    assert.equal(keys[0], keys[1]);
  });
});

describe('workflows: changed code', () => {
  it('parks a run whose code renamed a recorded step, names it, and resumes once fixed', async () => {
    const { store, first, second } = pair();
    const wf = first.define('change', async (ctx) => {
      await ctx.step('a', () => 1);
      return ctx.step('b', hang);
    });
    second.define('change', async (ctx) => {
      await ctx.step('renamed', () => 1);
      return ctx.step('b', () => 2);
    });
    await wf.start('ch-1', null);
    await recoverAfter(second, 150);
    await assert.rejects(second.handle('ch-1').result(), withCode(ErrorCode.WORKFLOW_NONDETERMINISM, /"renamed".*"a"/));
    assert.equal((await second.status('ch-1')).state, 'blocked');
    assert.equal(await second.recoverDue(), 0, 'a parked run is left alone');
    const fixed = new Workflows({ store, leaseMs: 150, heartbeatMs: 0, retentionMs: 60_000 });
    fixed.define('change', async (ctx) => {
      await ctx.step('a', () => 1);
      return ctx.step('b', () => 3);
    });
    assert.equal(await fixed.resume('ch-1'), true);
    assert.equal(await fixed.recoverDue(), 1);
    assert.equal(await fixed.handle('ch-1').result(), 3);
  });

  it('parks a run whose code no longer runs a recorded step', async () => {
    const { first, second } = pair();
    const wf = first.define('removed', async (ctx) => {
      await ctx.step('a', () => 1);
      await ctx.step('b', () => 2);
      return ctx.step('c', hang);
    });
    second.define('removed', async (ctx) => ctx.step('a', () => 1));
    await wf.start('rm-1', null);
    await recoverAfter(second, 150);
    await assert.rejects(second.handle('rm-1').result(), withCode(ErrorCode.WORKFLOW_NONDETERMINISM, /"b"/));
  });

  it('leaves a due run of a workflow it does not define to a process that does, without a claim', async () => {
    const { store, first, second } = pair();
    const wf = first.define('elsewhere', async (ctx) => ctx.step('a', hang));
    await wf.start('el-1', null);
    second.define('other', async () => 1);
    await sleep(170);
    for (let pass = 0; pass < 5; pass++) assert.equal(await second.recoverDue(), 0);
    assert.equal((await store.get(runKeyOf('el-1')))?.attempts, 1, 'no takeover was counted');
    const third = new Workflows({ store, leaseMs: 150, heartbeatMs: 0, retentionMs: 60_000, maxAttempts: 2 });
    third.define('elsewhere', async (ctx) => ctx.step('a', () => 'here'));
    assert.equal(await third.recoverDue(), 1);
    assert.equal(await third.handle('el-1').result(), 'here');
  });

  it('resumes a run with the version it started with, while new runs take the newest', async () => {
    const { first, second } = pair();
    const v1 = first.define('versioned', async (ctx) => {
      await ctx.step('one', () => 'v1');
      return ctx.step('two', hang);
    });
    second.define('versioned', async (ctx) => {
      await ctx.step('one', () => 'v1');
      return ctx.step('two', () => 'resumed by v1');
    });
    const v2 = second.define('versioned', async (ctx) => ctx.step('only', () => 'v2'), { version: 2 });
    await v1.start('v-1', null);
    await recoverAfter(second, 150);
    assert.equal(await second.handle('v-1').result(), 'resumed by v1');
    assert.equal(await v2.run('v-2', null), 'v2');
    assert.equal((await second.status('v-2')).version, 2);
  });
});

describe('workflows: durable sleep, cancel, dead runs', () => {
  it('lets the lease go during a long sleep; a worker wakes the run when it is due', async () => {
    const { first, second } = pair({ inlineSleepMs: 0 });
    const log: string[] = [];
    const body = async (ctx: WorkflowContext) => {
      await ctx.step('before', () => log.push('before'));
      await ctx.sleep(250, 'three days');
      await ctx.step('after', () => log.push('after'));
      return 'woke';
    };
    const wf = first.define('sleepy', body);
    second.define('sleepy', body);
    await wf.start('s-1', null);
    await first.drain();
    const view = await first.status('s-1');
    assert.equal(view.state, 'sleeping');
    assert.equal(view.steps[1]?.state, 'waiting');
    assert.equal(await second.recoverDue(), 0, 'not due yet');
    await sleep(260);
    assert.equal(await second.recoverDue(), 1);
    assert.equal(await second.handle('s-1').result(), 'woke');
    assert.deepEqual(log, ['before', 'after']);
    assert.equal((await second.status('s-1')).steps[1]?.state, 'done');
  });

  it('cancels a sleeping run: it is woken, runs its undos and ends cancelled', async () => {
    const { first, second } = pair({ inlineSleepMs: 0 });
    const log: string[] = [];
    const body = async (ctx: WorkflowContext) => {
      await ctx.step('reserve', () => 'r-1', { compensate: (id) => log.push(`release ${id}`) });
      await ctx.sleep(60_000);
      await ctx.step('never', () => log.push('never'));
    };
    const wf = first.define('cancel', body);
    second.define('cancel', body);
    await wf.start('c-1', null);
    await first.drain();
    assert.equal(await first.cancel('c-1', 'customer asked'), true);
    assert.equal(await second.recoverDue(), 1);
    await assert.rejects(second.handle('c-1').result(), withCode(ErrorCode.WORKFLOW_CANCELLED, /customer asked/));
    assert.deepEqual(log, ['release r-1']);
    assert.equal((await second.status('c-1')).state, 'cancelled');
    assert.equal(await second.cancel('c-1'), false, 'a finished run stays as it is');
  });

  it('parks a run as dead after too many takeovers, with its last error; resume gives it another round', async () => {
    const { store, first } = pair({ maxAttempts: 2 });
    const hanging = async (ctx: WorkflowContext) => ctx.step('stuck', hang);
    const wf = first.define('dead', hanging);
    await wf.start('d-1', null);
    const secondWorker = new Workflows({ store, leaseMs: 150, heartbeatMs: 0, retentionMs: 60_000, maxAttempts: 2 });
    secondWorker.define('dead', hanging);
    assert.equal(await recoverAfterNoDrain(secondWorker, 150), 1, 'the first takeover runs');
    const third = new Workflows({ store, leaseMs: 150, heartbeatMs: 0, retentionMs: 60_000, maxAttempts: 2 });
    third.define('dead', async (ctx) => ctx.step('stuck', () => 'unstuck'));
    await recoverAfter(third, 150);
    await assert.rejects(third.handle('d-1').result(), withCode(ErrorCode.WORKFLOW_DEAD, /stopped 2 times/));
    assert.equal((await third.status('d-1')).state, 'dead');
    assert.equal(await third.recoverDue(), 0);
    assert.equal(await third.resume('d-1'), true);
    assert.equal(await third.recoverDue(), 1);
    assert.equal(await third.handle('d-1').result(), 'unstuck');
  });
});

describe('workflows: records at rest and bad input', () => {
  it('seals the journal with the encryption key: no input or step value in the clear', async () => {
    const store = new MemoryStore();
    const workflows = new Workflows({ store, encryptionKey: 'a secret of at least 32 bytes, for the test' });
    const wf = workflows.define('secret', async (ctx, card: string) => ctx.step('tokenize', () => `tok-${card}`));
    assert.equal(await wf.run('e-1', '4242424242424242'), 'tok-4242424242424242');
    const entries = await store.entries(runKeyOf('e-1'));
    assert.ok(entries.length >= 2);
    for (const entry of entries) assert.ok(!Buffer.from(entry.data).toString('latin1').includes('4242'));
    const other = new Workflows({ store, encryptionKey: 'another secret of at least 32 bytes, for the test' });
    await assert.rejects(other.status('e-1'), withCode(ErrorCode.RESULT_UNREADABLE));
  });

  it('refuses what it cannot do with a clear error', async () => {
    assert.throws(() => new Workflows({ store: {} as JournalStore }), withCode(ErrorCode.INVALID_OPTIONS, /journals/));
    const workflows = new Workflows({ store: new MemoryStore() });
    assert.throws(() => workflows.define('', async () => 1), withCode(ErrorCode.INVALID_OPTIONS));
    workflows.define('twice', async () => 1);
    assert.throws(
      () => workflows.define('twice', async () => 2),
      withCode(ErrorCode.INVALID_OPTIONS, /higher version/),
    );
    const wf = workflows.define('bad', async (ctx) => ctx.step('fn', () => () => 'a function'));
    await assert.rejects(wf.start('', null), withCode(ErrorCode.KEY_MISSING));
    await assert.rejects(wf.start('x'.repeat(256), null), withCode(ErrorCode.KEY_INVALID));
    await assert.rejects(wf.run('bad-1', null), withCode(ErrorCode.WORKFLOW_FAILED, /cannot be recorded/));
    const sleeper = workflows.define('sleep-bad', async (ctx) => ctx.sleep(-1));
    await assert.rejects(sleeper.run('sb-1', null), withCode(ErrorCode.WORKFLOW_FAILED, /0 ms or more/));
    await assert.rejects(workflows.cancel('none'), withCode(ErrorCode.WORKFLOW_NOT_FOUND));
    await assert.rejects(workflows.handle('none').result(), withCode(ErrorCode.WORKFLOW_NOT_FOUND));
  });
});

/** `recoverAfter` without waiting for the runs it took: for runs that hang. */
async function recoverAfterNoDrain(workflows: Workflows, ms: number): Promise<number> {
  await sleep(ms + 20);
  return workflows.recoverDue();
}

describe('workflows: signals and child runs', () => {
  it('waits durably for an approval: the run holds no lease, the signal wakes it, a second signal is refused', async () => {
    const { first, second } = pair({ signalPollMs: 60_000 });
    const log: string[] = [];
    const body = async (ctx: WorkflowContext, amount: number) => {
      await ctx.step('request', () => log.push(`asked to approve ${amount}`));
      const decision = await ctx.waitForSignal<{ approved: boolean; by: string }>('approval');
      await ctx.step('refund', () => log.push(`refunded by ${decision.by}`));
      return decision;
    };
    const wf = first.define('approve', body);
    second.define('approve', body);
    await wf.start('ap-1', 120);
    await first.drain();
    assert.equal((await first.status('ap-1')).state, 'waiting');
    assert.equal(await second.recoverDue(), 0, 'nothing to do before the signal');
    assert.equal(await first.signal('ap-1', 'approval', { approved: true, by: 'ana' }), true);
    assert.equal(await first.signal('ap-1', 'approval', { approved: false, by: 'bob' }), false);
    assert.equal(await second.recoverDue(), 1, 'the signal woke the run');
    assert.deepEqual(await second.handle('ap-1').result(), { approved: true, by: 'ana' });
    assert.deepEqual(log, ['asked to approve 120', 'refunded by ana']);
    const view = await second.status('ap-1');
    assert.deepEqual(
      view.steps.map((step) => [step.kind, step.name, step.state]),
      [
        ['step', 'request', 'done'],
        ['signal', 'approval', 'done'],
        ['step', 'refund', 'done'],
      ],
    );
  });

  it('takes a signal sent before the wait at once, and fails a wait that ran out with STEP_TIMEOUT', async () => {
    const { first, second } = pair({ signalPollMs: 60_000 });
    const early = first.define('early', async (ctx) => ctx.waitForSignal('go'));
    await first.signal('early-1', 'go', 'already here');
    assert.equal(await early.run('early-1', null), 'already here');
    const body = async (ctx: WorkflowContext) => ctx.waitForSignal('never', { timeoutMs: 100 });
    const late = first.define('late', body);
    second.define('late', body);
    await late.start('late-1', null);
    await first.drain();
    await sleep(120);
    assert.equal(await second.recoverDue(), 1);
    await assert.rejects(second.handle('late-1').result(), withCode(ErrorCode.WORKFLOW_FAILED, /no signal "never"/));
  });

  it('starts a child run once, linked to its parent, and gives its result', async () => {
    const { first, second } = pair();
    let childRuns = 0;
    const childBody = async (ctx: WorkflowContext, n: number) =>
      ctx.step('work', () => {
        childRuns += 1;
        return n + 1;
      });
    const child = first.define('child', childBody);
    const parentBody = (stop: boolean) => async (ctx: WorkflowContext) => {
      const value = await ctx.child(child, `child-of-${ctx.workflowId}`, 41);
      if (stop) await ctx.step('after', hang);
      return value;
    };
    const parent = first.define('parent', parentBody(true));
    second.define('child', childBody);
    second.define('parent', parentBody(false));
    await parent.start('p-1', null);
    await recoverAfter(second, 150);
    assert.equal(await second.handle('p-1').result(), 42);
    assert.equal(childRuns, 1, 'the resumed parent attached to the finished child');
    assert.equal((await second.status('child-of-p-1')).parentId, 'p-1');
  });
});

describe('workflows: journals of other faces', () => {
  it('leaves a due record whose journal is not a workflow run (a notification log) alone', async () => {
    const { store, first } = pair();
    const key = 'not-a-run';
    const now = Date.now();
    await store.claim({
      key,
      fingerprint: 'f',
      token: 't',
      nowMs: now,
      leaseExpiresAtMs: now + 20,
      expiresAtMs: now + 60_000,
    });
    assert.equal(await store.append({ key, token: 't', seq: 0, data: new Uint8Array([1, 2, 3]), nowMs: now }), true);
    await sleep(30);
    assert.deepEqual((await store.runs({ dueBy: Date.now() })).keys, [key]);
    assert.equal(await first.recoverDue(), 0);
    assert.equal((await store.get(key))?.token, 't', 'not claimed');
  });
});

describe('workflows: a store that fails while the run lets go', () => {
  it('ends the run like a crash when the store refuses the suspension, and recovery resumes it', async () => {
    const memory = new MemoryStore();
    let failExtend = true;
    const flaky = new Proxy(memory, {
      get(target, property, receiver) {
        if (property === 'extend' && failExtend) return async () => Promise.reject(new Error('connection reset'));
        const value = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as JournalStore;
    const settings = { leaseMs: 150, heartbeatMs: 0, retentionMs: 60_000, inlineSleepMs: 0 };
    const first = new Workflows({ store: flaky, ...settings });
    const body = async (ctx: WorkflowContext) => {
      await ctx.sleep(50);
      return 'woke';
    };
    const wf = first.define('flaky-sleep', body);
    await wf.start('fs-1', null);
    await first.drain();
    failExtend = false;
    const second = new Workflows({ store: memory, ...settings });
    second.define('flaky-sleep', body);
    assert.equal(await recoverAfter(second, 150), 1);
    assert.equal(await second.handle('fs-1').result(), 'woke');
  });
});
