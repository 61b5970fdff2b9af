/**
 * The variants of the production part: the same work bare, behind Idem with nothing on, and behind
 * Idem with each production feature on (an `onEvent` hook, OpenTelemetry with no SDK, a recording
 * tracer and meter, encryption, encryption with telemetry). Shared by the function wrapper
 * (`telemetry-cost.ts`) and the HTTP server (`production-server.ts`).
 */

import { randomBytes } from 'node:crypto';
import { metrics, trace } from '@opentelemetry/api';
import type { EngineOptions } from '../src/core/engine.js';
import type { TelemetryAttributes, TelemetryMeter, TelemetrySpan, TelemetryTracer } from '../src/core/telemetry.js';

export const TELEMETRY_VARIANTS = [
  { id: 'bare', label: 'bare (no Idem)' },
  { id: 'off', label: 'Idem, features off' },
  { id: 'on-event', label: 'onEvent (no-op hook)' },
  { id: 'otel-noop', label: 'OTel API, no SDK' },
  { id: 'otel-recording', label: 'OTel, recording' },
  { id: 'encrypted', label: 'encryption' },
  { id: 'encrypted-otel', label: 'encryption + OTel rec.' },
] as const;

export type TelemetryVariantId = (typeof TELEMETRY_VARIANTS)[number]['id'];

/** What the variants add to the engine's options. */
export type FeatureOptions = Pick<EngineOptions, 'telemetry' | 'onEvent' | 'encryptionKey'>;

/** One span as the recording tracer keeps it. */
interface RecordedSpan {
  name: string;
  attributes: TelemetryAttributes;
  startMs: number;
  endMs: number;
  status: number;
}

/** One metric point as the recording meter keeps it. */
interface RecordedPoint {
  instrument: string;
  value: number;
  attributes: TelemetryAttributes | undefined;
}

/** Spans or points kept before the buffer is handed off and started afresh, as a batch exporter does. */
const BATCH = 2048;

/**
 * A tracer and meter that keep every span and metric point in arrays, standing in for a real SDK
 * with an in-memory exporter: a span object with its attributes and times per span, one point
 * object per counter add or histogram record. Full batches are dropped (an exporter would send
 * them), so memory stays bounded.
 */
export class Recorder {
  spans: RecordedSpan[] = [];
  points: RecordedPoint[] = [];
  /** Spans and points handed off so far. */
  exported = 0;

  readonly tracer: TelemetryTracer = {
    startSpan: (name, options) => {
      const span: RecordedSpan = {
        name,
        attributes: { ...options?.attributes },
        startMs: performance.now(),
        endMs: 0,
        status: 0,
      };
      const handle: TelemetrySpan = {
        setAttribute: (key, value) => {
          span.attributes[key] = value;
        },
        setStatus: (status) => {
          span.status = status.code;
        },
        end: () => {
          span.endMs = performance.now();
          this.spans.push(span);
          if (this.spans.length >= BATCH) this.spans = this.#handOff(this.spans);
        },
      };
      return handle;
    },
  };

  readonly meter: TelemetryMeter = {
    createCounter: (instrument) => ({ add: (value, attributes) => this.#point(instrument, value, attributes) }),
    createHistogram: (instrument) => ({ record: (value, attributes) => this.#point(instrument, value, attributes) }),
  };

  #point(instrument: string, value: number, attributes: TelemetryAttributes | undefined): void {
    this.points.push({ instrument, value, attributes });
    if (this.points.length >= BATCH) this.points = this.#handOff(this.points);
  }

  #handOff<T>(batch: T[]): T[] {
    this.exported += batch.length;
    return [];
  }
}

/** A fresh 32-byte key per process: what is sealed here is never read by another run. */
const ENCRYPTION_KEY = randomBytes(32);

/**
 * The engine options of one variant; `undefined` for `bare`, which does not use Idem at all.
 * `recorder` receives the spans and points of the recording variants.
 */
export function featureOptions(id: TelemetryVariantId, recorder: Recorder): FeatureOptions | undefined {
  switch (id) {
    case 'bare':
      return undefined;
    case 'off':
      return {};
    case 'on-event':
      return { onEvent: () => {} };
    case 'otel-noop':
      // No SDK is registered in the benchmark: the global API hands out its no-op tracer and meter.
      return { telemetry: { tracer: trace.getTracer('idem-bench'), meter: metrics.getMeter('idem-bench') } };
    case 'otel-recording':
      return { telemetry: { tracer: recorder.tracer, meter: recorder.meter } };
    case 'encrypted':
      return { encryptionKey: ENCRYPTION_KEY };
    case 'encrypted-otel':
      return { encryptionKey: ENCRYPTION_KEY, telemetry: { tracer: recorder.tracer, meter: recorder.meter } };
  }
}

/** The label of a variant id, for tables. */
export function labelOf(id: string): string {
  return TELEMETRY_VARIANTS.find((variant) => variant.id === id)?.label ?? id;
}

/** The stores the production part's HTTP runs use. */
export const PRODUCTION_HTTP_STORES = ['memory', 'sqlite'] as const;
export type ProductionHttpStore = (typeof PRODUCTION_HTTP_STORES)[number];

/** What bench/production-server.ts is started with (as JSON in argv). */
export interface ProductionServerConfig {
  /** Names the server in error messages. */
  variant: string;
  stores: ProductionHttpStore[];
  /** Where the SQLite files go, one per variant. */
  directory: string;
}

/** The route of a variant on a store in bench/production-server.ts; `bare` has no store. */
export function routeOf(variant: string, store: string | undefined): string {
  return store === undefined ? `/${variant}/orders` : `/${variant}-${store}/orders`;
}
