// The engine's telemetry (src/core/telemetry.ts): spans, counters and the store-latency histogram
// reported to a tracer and meter given by shape, and the `onEvent` hook. The tracer and meter here
// are a tiny recording backend of the user's, not a stand-in for a server; the stores are real.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ToolGuard } from '../../src/agent/guard.js';
import { Engine, type EngineOptions } from '../../src/core/engine.js';
import { ErrorCode, isIdempotencyError } from '../../src/core/errors.js';
import { idempotent } from '../../src/core/idempotent.js';
import { type Outcome, OutcomeKind } from '../../src/core/outcome.js';
import type { Store } from '../../src/core/store.js';
import type {
  IdemEvent,
  TelemetryAttributes,
  TelemetryMeter,
  TelemetrySpan,
  TelemetryTracer,
} from '../../src/core/telemetry.js';
import { Notifier } from '../../src/notify/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import * as sqlite from '../stores/sqlite.factory.js';

const done: Outcome = { kind: OutcomeKind.value, payload: new TextEncoder().encode('"done"') };

interface RecordedSpan {
  name: string;
  attributes: TelemetryAttributes;
  status?: { code: number; message?: string };
  ended: boolean;
}

/** A tracer and meter that keep what they are given, as an in-memory exporter would. */
class Recorder {
  readonly spans: RecordedSpan[] = [];
  readonly counts = new Map<string, number>();
  readonly latencies: { name: string; value: number; attributes: TelemetryAttributes }[] = [];
  calls = 0;

  readonly tracer: TelemetryTracer = {
    startSpan: (name, options) => {
      this.calls += 1;
      const span: RecordedSpan = { name, attributes: { ...options?.attributes }, ended: false };
      this.spans.push(span);
      const handle: TelemetrySpan = {
        setAttribute: (key, value) => {
          span.attributes[key] = value;
        },
        setStatus: (status) => {
          span.status = status;
        },
        end: () => {
          span.ended = true;
        },
      };
      return handle;
    },
  };

  readonly meter: TelemetryMeter = {
    createCounter: (name) => {
      this.calls += 1;
      return {
        add: (value) => {
          this.counts.set(name, (this.counts.get(name) ?? 0) + value);
        },
      };
    },
    createHistogram: (name) => {
      this.calls += 1;
      return {
        record: (value, attributes) => {
          this.latencies.push({ name, value, attributes: { ...attributes } });
        },
      };
    },
  };

  count(name: string): number {
    return this.counts.get(name) ?? 0;
  }

  spanNames(): string[] {
    return this.spans.map((span) => `${span.name}:${span.attributes['idem.outcome'] ?? ''}`);
  }
}

function engineWith(recorder: Recorder, options: Partial<EngineOptions> = {}): Engine {
  return new Engine({
    store: new MemoryStore(),
    telemetry: { tracer: recorder.tracer, meter: recorder.meter },
    ...options,
  });
}

describe('telemetry', () => {
  it('reports a new key as a claim span with outcome run, then a complete span, and counts a run', async () => {
    const recorder = new Recorder();
    const engine = engineWith(recorder);
    const decision = await engine.begin({ key: 'k', fingerprint: 'fp' });
    assert.equal(decision.kind, 'run');
    await decision.lease.complete(done);
    assert.deepEqual(recorder.spanNames(), ['idem.claim:run', 'idem.run:', 'idem.complete:']);
    assert.deepEqual(recorder.spans[0]?.attributes, {
      'idem.store': 'memory',
      'idem.outcome': 'run',
      'idem.attempts': 1,
    });
    assert.deepEqual(recorder.spans[1]?.attributes, {
      'idem.store': 'memory',
      'idem.attempts': 1,
      'idem.run_end': 'completed',
    });
    assert.ok(recorder.spans.every((span) => span.ended && span.status === undefined));
    assert.equal(recorder.count('idem.runs'), 1);
    assert.equal(recorder.count('idem.lease.takeovers'), 0);
  });

  it('reports a repeated call as outcome replay and a changed input as outcome mismatch, with no key or result in attributes', async () => {
    const recorder = new Recorder();
    const charge = idempotent(async (_id: string, amount: number) => `charged ${amount}`, {
      store: new MemoryStore(),
      name: 'charge',
      key: (id) => id,
      telemetry: { tracer: recorder.tracer, meter: recorder.meter },
    });
    await charge('order-1', 10);
    assert.equal(await charge('order-1', 10), 'charged 10');
    await assert.rejects(charge('order-1', 99), (error) => isIdempotencyError(error, ErrorCode.FINGERPRINT_MISMATCH));
    assert.deepEqual(recorder.spanNames(), [
      'idem.claim:run',
      'idem.run:',
      'idem.complete:',
      'idem.claim:replay',
      'idem.replay:',
      'idem.claim:mismatch',
    ]);
    assert.deepEqual(
      [recorder.count('idem.runs'), recorder.count('idem.replays'), recorder.count('idem.mismatches')],
      [1, 1, 1],
    );
    const values = recorder.spans.flatMap((span) => Object.values(span.attributes).map(String));
    assert.ok(!values.some((value) => value.includes('order-1') || value.includes('charged')));
  });

  it('counts a key in progress elsewhere as a conflict and a release as a release span', async () => {
    const recorder = new Recorder();
    const engine = engineWith(recorder);
    const first = await engine.begin({ key: 'k', fingerprint: 'fp' });
    assert.equal((await engine.begin({ key: 'k', fingerprint: 'fp' })).kind, 'in_progress');
    assert.equal(first.kind, 'run');
    await first.lease.release();
    assert.deepEqual(recorder.spanNames(), ['idem.claim:run', 'idem.run:', 'idem.claim:in_progress', 'idem.release:']);
    assert.equal(recorder.spans[1]?.attributes['idem.run_end'], 'released');
    assert.equal(recorder.count('idem.conflicts'), 1);
  });

  for (const kind of ['memory', 'sqlite'] as const) {
    it(`counts a takeover after a holder's lease expired, and the holder's LEASE_LOST (${kind} store)`, async () => {
      const namespace = `telemetry_${randomBytes(4).toString('hex')}`;
      const store: Store = kind === 'memory' ? new MemoryStore() : await sqlite.createStore(namespace);
      try {
        const recorder = new Recorder();
        const events: IdemEvent[] = [];
        const options = {
          store,
          leaseMs: 50,
          heartbeatMs: 0,
          telemetry: { tracer: recorder.tracer, meter: recorder.meter },
          onEvent: (event: IdemEvent) => events.push(event),
        };
        const holder = await new Engine(options).begin({ key: 'k', fingerprint: 'fp' });
        assert.equal(holder.kind, 'run');
        await sleep(120); // past the holder's 50 ms lease
        const taker = await new Engine(options).begin({ key: 'k', fingerprint: 'fp' });
        assert.equal(taker.kind, 'run');
        assert.equal(taker.lease.attempts, 2);
        assert.equal(recorder.count('idem.lease.takeovers'), 1);
        await assert.rejects(holder.lease.complete(done), (error) => isIdempotencyError(error, ErrorCode.LEASE_LOST));
        assert.equal(recorder.count('idem.lease.losses'), 1);
        const failed = recorder.spans.at(-1);
        assert.equal(failed?.name, 'idem.complete');
        assert.deepEqual(failed?.status, { code: 2, message: ErrorCode.LEASE_LOST });
        assert.equal(failed?.ended, true);
        assert.deepEqual(
          events.map((event) => event.type),
          ['claim', 'claim', 'lease_lost'],
        );
        assert.equal(events[1]?.type === 'claim' && events[1].attempts, 2);
        assert.equal(events[0]?.store, kind);
      } finally {
        await store.close?.();
        if (kind === 'sqlite') await sqlite.dropStore(namespace);
      }
    });
  }

  it('records how long a caller waited for a key in progress elsewhere, by the outcome it got', async () => {
    const recorder = new Recorder();
    const engine = engineWith(recorder);
    const first = await engine.begin({ key: 'k', fingerprint: 'fp' });
    assert.equal(first.kind, 'run');
    const waiting = engine.begin({ key: 'k', fingerprint: 'fp', waitMs: 60_000 });
    await sleep(20);
    await first.lease.complete(done);
    assert.equal((await waiting).kind, 'replay');
    // A caller that did not wait (the key was free) records no wait.
    await engine.begin({ key: 'other', fingerprint: 'fp', waitMs: 60_000 });
    const waits = recorder.latencies.filter((entry) => entry.name === 'idem.wait.duration');
    assert.equal(waits.length, 1);
    assert.deepEqual(waits[0]?.attributes, { 'idem.store': 'memory', 'idem.outcome': 'replay' });
    assert.ok((waits[0]?.value ?? -1) >= 0);
  });

  it('ends the run span of a holder whose lease was taken over as lost, with an error status', async () => {
    const recorder = new Recorder();
    let clock = 1_000_000;
    const engine = engineWith(recorder, { leaseMs: 1_000, heartbeatMs: 100, now: () => clock });
    const holder = await engine.begin({ key: 'k', fingerprint: 'fp' });
    assert.equal(holder.kind, 'run');
    clock += 5_000;
    const taker = await engine.begin({ key: 'k', fingerprint: 'fp' });
    assert.equal(taker.kind, 'run');
    await assert.rejects(holder.lease.extend(), (error) => isIdempotencyError(error, ErrorCode.LEASE_LOST));
    // The heartbeat finds the loss on its next beat and ends the run span.
    while (recorder.spans.filter((span) => span.name === 'idem.run' && span.ended).length === 0) await sleep(20);
    const [held, taken] = recorder.spans.filter((span) => span.name === 'idem.run');
    assert.deepEqual([held?.attributes['idem.run_end'], held?.status?.message], ['lost', 'LEASE_LOST']);
    assert.equal(taken?.attributes['idem.attempts'], 2);
    await taker.lease.complete(done);
  });

  it('records the latency of every store call in ms, per operation and store', async () => {
    const recorder = new Recorder();
    const engine = engineWith(recorder);
    const first = await engine.begin({ key: 'a', fingerprint: 'fp' });
    assert.equal(first.kind, 'run');
    await first.lease.extend();
    await first.lease.complete(done);
    const second = await engine.begin({ key: 'b', fingerprint: 'fp' });
    assert.equal(second.kind, 'run');
    await second.lease.release();
    assert.deepEqual(
      recorder.latencies.map((point) => point.attributes['idem.operation']),
      ['claim', 'extend', 'complete', 'claim', 'release'],
    );
    for (const point of recorder.latencies) {
      assert.equal(point.name, 'idem.store.duration');
      assert.equal(point.attributes['idem.store'], 'memory');
      assert.ok(Number.isFinite(point.value) && point.value >= 0);
    }
  });

  it('tells onEvent of each claim, completion, release and store error, in order', async () => {
    const events: IdemEvent[] = [];
    const engine = new Engine({ store: new MemoryStore(), onEvent: (event) => events.push(event) });
    const first = await engine.begin({ key: 'a', fingerprint: 'fp' });
    assert.equal(first.kind, 'run');
    await first.lease.complete(done);
    await engine.begin({ key: 'a', fingerprint: 'fp' });
    const second = await engine.begin({ key: 'b', fingerprint: 'fp' });
    assert.equal(second.kind, 'run');
    await second.lease.release();
    assert.deepEqual(
      events.map((event) => (event.type === 'claim' ? `claim:${event.outcome}` : event.type)),
      ['claim:run', 'complete', 'claim:replay', 'claim:run', 'release'],
    );
    assert.equal(events[1]?.type === 'complete' && events[1].whole, true);

    const broken: Store = Object.assign(new MemoryStore(), {
      name: 'broken',
      claim: async () => {
        throw new Error('ECONNREFUSED 127.0.0.1:5432');
      },
    });
    const failures: IdemEvent[] = [];
    const recorder = new Recorder();
    const failing = new Engine({
      store: broken,
      onEvent: (event) => failures.push(event),
      telemetry: { meter: recorder.meter },
    });
    await assert.rejects(failing.begin({ key: 'a', fingerprint: 'fp' }), (error) =>
      isIdempotencyError(error, ErrorCode.STORE_UNAVAILABLE),
    );
    assert.deepEqual(
      failures.map((event) => event.type),
      ['store_error'],
    );
    const [failure] = failures;
    assert.ok(failure?.type === 'store_error');
    assert.equal(failure.operation, 'claim');
    assert.equal(failure.store, 'broken');
    assert.equal(failure.error.code, ErrorCode.STORE_UNAVAILABLE);
    assert.equal(recorder.count('idem.store.errors'), 1);
  });

  it('runs and stores the work when onEvent throws', async () => {
    let runs = 0;
    const work = idempotent(async (_id: string) => ++runs, {
      store: new MemoryStore(),
      name: 'work',
      key: (id) => id,
      onEvent: () => {
        throw new Error('the hook is broken');
      },
    });
    assert.equal(await work('k'), 1);
    assert.equal(await work('k'), 1);
    assert.equal(runs, 1);
  });

  it('makes no telemetry and calls nothing when neither telemetry nor onEvent is given', async () => {
    const recorder = new Recorder();
    for (const options of [{}, { telemetry: {} }]) {
      const engine = new Engine({ store: new MemoryStore(), ...options });
      assert.equal(engine.telemetry, undefined);
      const decision = await engine.begin({ key: 'k', fingerprint: 'fp' });
      assert.equal(decision.kind, 'run');
      await decision.lease.complete(done);
    }
    const metricsOnly = engineWith(recorder, { telemetry: { meter: recorder.meter } });
    const callsAfterSetup = recorder.calls;
    await metricsOnly.begin({ key: 'k', fingerprint: 'fp' });
    assert.equal(recorder.calls, callsAfterSetup, 'a meter alone starts no span');
    assert.equal(recorder.spans.length, 0);
  });

  it('reaches the notifier and the agent guard, whose engines are made inside them', async () => {
    const seen: string[] = [];
    const onEvent = (event: IdemEvent) => seen.push(event.type === 'claim' ? `claim:${event.outcome}` : event.type);
    const notifier = new Notifier({ store: new MemoryStore(), onEvent });
    const note = { recipient: 'ann@example.com', event: 'shipped:1', channel: 'log', send: async () => 'sent' };
    await notifier.notify(note);
    await notifier.notify(note);
    // The duplicate is suppressed, and the suppression is logged as a record of its own.
    assert.deepEqual(seen.slice(0, 3), ['claim:run', 'complete', 'claim:replay']);

    seen.length = 0;
    const guard = new ToolGuard({ store: new MemoryStore(), runId: 'run-1', onEvent });
    await guard.call({ tool: 'refund', callId: 'c1', args: { cents: 5 } }, async () => 'refunded');
    await guard.call({ tool: 'refund', callId: 'c1', args: { cents: 5 } }, async () => 'refunded');
    assert.deepEqual(seen, ['claim:run', 'complete', 'claim:replay']);
  });
});
