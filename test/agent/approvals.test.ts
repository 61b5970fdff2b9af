import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type AgentAnswer,
  approvalSignalName,
  guardedCall,
  handoffRun,
  pendingApprovals,
} from '../../src/agent/index.js';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import { runChild as runChildOf } from '../kill-child.js';
import { type ApprovalsApp, openApprovals, REFUND_CALL } from './fixtures/approvals-agent.js';

const workerPath = new URL('./fixtures/approvals-worker.ts', import.meta.url).pathname;
const signal = approvalSignalName('refund', REFUND_CALL);
const approvedAnswer = 'done: refund={"refunded":500,"order":"A-7"}';

let dir: string;
let first: ApprovalsApp;
let second: ApprovalsApp;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'idem-approvals-'));
  first = openApprovals(dir);
  second = openApprovals(dir);
});

after(async () => {
  await first.close();
  await second.close();
  rmSync(dir, { recursive: true, force: true });
});

const id = (name: string) => `${name}-${randomBytes(4).toString('hex')}`;

function runChild(job: { agent: 'support' | 'triage'; id: string; resume: boolean }, killAt?: string) {
  return runChildOf(workerPath, { ...job, dir }, killAt);
}

describe('approvals of tool calls in a durable agent run', () => {
  it('waits for the approval without running the tool, then runs it once; a second decision changes nothing', async () => {
    const run = id('approve');
    await first.support.start(run, { prompt: 'refund A-7' });
    await first.workflows.drain();
    const waiting = await first.workflows.status(run);
    assert.equal(waiting.state, 'waiting');
    assert.deepEqual(
      pendingApprovals(waiting).map(({ signal, tool, id }) => ({ signal, tool, id })),
      [{ signal, tool: 'refund', id: REFUND_CALL }],
    );
    assert.equal(first.attempts(run), 0, 'the tool has not run');
    assert.equal(await second.workflows.recoverDue(), 0, 'another instance has nothing to do before the approval');
    assert.equal(first.attempts(run), 0);

    assert.equal(await first.workflows.signal(run, signal, { approved: true }), true);
    assert.equal(await second.workflows.recoverDue(), 1, 'the approval woke the run');
    const answer = (await second.workflows.handle(run).result()) as AgentAnswer;
    assert.equal(answer.text, approvedAnswer, 'the model got the tool result');
    assert.equal(first.attempts(run), 1);
    assert.equal(first.effects(run), 1);
    assert.equal(first.modelCalls(run, 0), 1, 'the turn that asked for the refund was not asked again');
    assert.deepEqual(pendingApprovals(await first.workflows.status(run)), []);

    assert.equal(await first.workflows.signal(run, signal, { approved: false, reason: 'too late' }), false);
    assert.equal(await second.workflows.recoverDue(), 0);
    assert.equal(
      (await first.support.start(run, { prompt: 'refund A-7' }).then((h) => h.result())).text,
      approvedAnswer,
    );
    assert.equal(first.attempts(run), 1, 'the repeated decision ran nothing');
  });

  it('gives the model the refusal in place of the result, and never runs a refused tool', async () => {
    const run = id('refuse');
    await first.support.start(run, { prompt: 'refund A-7' });
    await first.workflows.drain();
    await first.workflows.signal(run, signal, { approved: false, reason: 'over the limit' });
    assert.equal(await second.workflows.recoverDue(), 1);
    const answer = (await second.workflows.handle(run).result()) as AgentAnswer;
    assert.equal(answer.text, 'done: refund={"refused":true,"reason":"over the limit"}');
    assert.equal(first.attempts(run), 0);
    const step = (await first.workflows.status(run)).steps.find((s) => s.name === `tool:refund:${REFUND_CALL}`);
    assert.deepEqual(step?.value, { refused: true, reason: 'over the limit' }, 'the refusal is the recorded result');
  });

  it('refuses to wait for an approval outside a durable run, and to hand off outside one', async () => {
    let ran = false;
    const call = { tool: 'refund', callId: 'c1', args: {}, runId: 'r1', approval: ['refund'] };
    await assert.rejects(
      guardedCall(call, () => {
        ran = true;
      }),
      (error) =>
        isIdempotencyError(error) && error.code === ErrorCode.INVALID_OPTIONS && /needs approval/.test(error.message),
    );
    assert.equal(ran, false);
    await assert.rejects(
      handoffRun(first.desk, { prompt: 'x' }),
      (error) => isIdempotencyError(error) && error.code === ErrorCode.INVALID_OPTIONS,
    );
  });
});

describe('approvals and handoffs across killed processes', () => {
  it('a process killed while waiting, and one killed inside the approved tool after its effect: the refund happens once', async () => {
    const run = id('kill');
    const waiting = await runChild({ agent: 'support', id: run, resume: false }, 'waiting');
    assert.equal(waiting.signal, 'SIGKILL');
    assert.equal((await first.workflows.status(run)).state, 'waiting');
    assert.equal(first.attempts(run), 0);
    await first.workflows.signal(run, signal, { approved: true });
    const inside = await runChild({ agent: 'support', id: run, resume: true }, 'tool:refund:effect');
    assert.equal(inside.signal, 'SIGKILL');
    assert.equal(first.attempts(run), 1, 'the tool ran and the process died before it was recorded');
    const resumed = await runChild({ agent: 'support', id: run, resume: true });
    assert.equal(JSON.parse(resumed.stdout).text, approvedAnswer);
    assert.equal(first.effects(run), 1, 'the refund happened once');
    assert.equal(first.modelCalls(run, 0), 1);
  });

  it('a parent killed after its handoff started: resumed, the other run ran once and names its parent', async () => {
    const run = id('triage');
    const child = `${run}:handoff:desk`;
    const killed = await runChild({ agent: 'triage', id: run, resume: false }, 'tool:refund:effect');
    assert.equal(killed.signal, 'SIGKILL');
    assert.equal(first.attempts(child), 1);
    const resumed = await runChild({ agent: 'triage', id: run, resume: true });
    assert.equal(JSON.parse(resumed.stdout), `desk says ${approvedAnswer}`);
    assert.equal(first.effects(child), 1, 'the handed-off run refunded once');
    assert.equal(first.modelCalls(child, 0), 1, 'the handed-off run was not started again');
    const view = await first.workflows.status(child);
    assert.equal(view.parentId, run);
    assert.equal(view.state, 'completed');
  });
});
