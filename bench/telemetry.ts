// The cost of telemetry on idempotent() over the memory store: off, an `onEvent` hook that does
// nothing, @opentelemetry/api with no SDK registered (its no-op tracer and meter), and a tracer and
// meter that keep what they get (an in-memory exporter's work, roughly). Measured only.
// Run: npx tsx bench/telemetry.ts [durationMs per case, default 3000]
import { metrics, trace } from '@opentelemetry/api';
import { type IdempotentOptions, idempotent } from '../src/core/idempotent.js';
import type { TelemetryMeter, TelemetryTracer } from '../src/core/telemetry.js';
import { MemoryStore } from '../src/stores/memory/index.js';
import { measureTogether } from './measure.js';

let sink = 0;
const recordingTracer: TelemetryTracer = {
  startSpan: (name, options) => {
    const attributes: Record<string, unknown> = { ...options?.attributes, name };
    return {
      setAttribute: (key, value) => {
        attributes[key] = value;
      },
      setStatus: () => {},
      end: () => {
        sink += Object.keys(attributes).length;
      },
    };
  },
};
const recordingMeter: TelemetryMeter = {
  createCounter: () => ({
    add: (value) => {
      sink += value;
    },
  }),
  createHistogram: () => ({
    record: (value) => {
      sink += value;
    },
  }),
};

type Extra = Pick<IdempotentOptions<[number], number>, 'telemetry' | 'onEvent'>;
const CASES: [string, Extra][] = [
  ['off', {}],
  ['onEvent (no-op)', { onEvent: () => {} }],
  ['OTel API, no SDK', { telemetry: { tracer: trace.getTracer('idem'), meter: metrics.getMeter('idem') } }],
  ['recording tracer + meter', { telemetry: { tracer: recordingTracer, meter: recordingMeter } }],
];

const durationMs = Number(process.argv[2] ?? 3000);
const functions = CASES.map(([, extra], index) =>
  idempotent(async (n: number) => n, {
    store: new MemoryStore(),
    name: `bench${index}`,
    key: (n) => String(n),
    ...extra,
  }),
);
const fresh = await measureTogether(
  functions.map((fn) => (i: number) => fn(i)),
  { durationMs, slices: 10 },
);
for (const fn of functions) for (let i = 0; i < 100; i++) await fn(i);
const replays = await measureTogether(
  functions.map((fn) => (i: number) => fn(Math.abs(i) % 100)),
  { durationMs, slices: 10 },
);
const base = [fresh[0]?.meanUs ?? 0, replays[0]?.meanUs ?? 0];
console.log('case                       new key ns/call  (+ns)   replay ns/call  (+ns)');
CASES.forEach(([name], i) => {
  const n = (fresh[i]?.meanUs ?? 0) * 1000;
  const r = (replays[i]?.meanUs ?? 0) * 1000;
  console.log(
    `${name.padEnd(26)} ${n.toFixed(0).padStart(15)} ${(n - (base[0] ?? 0) * 1000).toFixed(0).padStart(6)} ${r.toFixed(0).padStart(15)} ${(r - (base[1] ?? 0) * 1000).toFixed(0).padStart(6)}`,
  );
});
if (sink < 0) console.log(sink);
