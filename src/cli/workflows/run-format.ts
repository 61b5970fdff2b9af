/** Runs as `idem workflows list` and `show` print them: tables for people, JSON for programs. */
import type { RunView, StepView } from '../../workflow/index.js';
import { columns } from '../text-table.js';

/** Longest value or error shown in a table cell; `--json` gives them whole. */
const CELL_CHARS = 60;
/** Longest input, result or error shown by `show` above the steps. */
const FIELD_CHARS = 500;

/** One line per run: id, workflow, state, attempts, steps done of those seen, last update. */
export function runsTable(runs: readonly RunView[]): string {
  return columns([
    ['ID', 'WORKFLOW', 'STATE', 'TRIES', 'STEPS', 'UPDATED'],
    ...runs.map((run) => [
      run.id,
      `${run.name}@${run.version}`,
      run.state,
      String(run.attempts),
      `${run.steps.filter((step) => step.state === 'done').length}/${run.steps.length}`,
      clock(run.updatedAtMs),
    ]),
  ]);
}

/** The run, then its steps as a timeline; `cancelling` is the reason of a cancellation not acted on yet. */
export function runDetails(run: RunView, nowMs: number, cancelling?: string): string {
  const lines = [
    `id          ${run.id}`,
    `workflow    ${run.name}@${run.version}`,
    `run id      ${run.runId}`,
    `state       ${run.state}`,
    `attempts    ${run.attempts}`,
    `created     ${clock(run.createdAtMs)}`,
    `updated     ${clock(run.updatedAtMs)}`,
  ];
  const lease = leaseLine(run, nowMs);
  if (lease !== undefined) lines.push(`lease       ${lease}`);
  if (cancelling !== undefined) lines.push(`cancelling  asked to stop: ${clip(cancelling, FIELD_CHARS)}`);
  lines.push(`input       ${preview(run.input, FIELD_CHARS)}`);
  if (run.state === 'completed') lines.push(`result      ${preview(run.result, FIELD_CHARS)}`);
  if (run.error !== undefined) lines.push(`error       ${clip(errorText(run.error), FIELD_CHARS)}`);
  lines.push('');
  lines.push(run.steps.length === 0 ? 'no steps yet.' : stepsTable(run.steps, nowMs));
  return lines.join('\n');
}

function stepsTable(steps: readonly StepView[], nowMs: number): string {
  return columns([
    ['#', 'STEP', 'KIND', 'STATE', 'TRIES', 'TOOK', 'VALUE OR ERROR'],
    ...steps.map((step) => [
      String(step.position),
      step.name,
      step.kind,
      stepState(step),
      String(step.attempts),
      step.kind !== 'sleep' && step.startedAtMs !== undefined && step.endedAtMs !== undefined
        ? took(step.endedAtMs - step.startedAtMs)
        : '-',
      stepDetail(step, nowMs),
    ]),
  ]);
}

/** A step's state, with what its undo did: `done, undone` or `done, undo failed`. */
function stepState(step: StepView): string {
  if (step.undone === undefined) return step.state;
  return `${step.state}, ${step.undone ? 'undone' : 'undo failed'}`;
}

function stepDetail(step: StepView, nowMs: number): string {
  if (step.kind === 'sleep' && step.wakeAtMs !== undefined) {
    const left = step.wakeAtMs - nowMs;
    return left > 0 ? `wakes ${clock(step.wakeAtMs)} (in ${took(left)})` : `woke ${clock(step.wakeAtMs)}`;
  }
  if (step.error !== undefined) {
    const retrying = step.state === 'running' ? 'last try: ' : '';
    return clip(`${retrying}${errorText(step.error)}`, CELL_CHARS);
  }
  if (step.state === 'unknown-outcome') return 'started, outcome not recorded: reconciled on resume';
  return step.state === 'done' ? preview(step.value, CELL_CHARS) : '';
}

function leaseLine(run: RunView, nowMs: number): string | undefined {
  const left = run.leaseExpiresAtMs - nowMs;
  switch (run.state) {
    case 'running':
      return left > 0 ? `held for ${took(left)} more` : undefined;
    case 'pending':
      return 'over: a worker (idem workflows worker) takes the run over';
    case 'dead':
    case 'blocked':
      return 'parked: idem workflows resume continues it, idem workflows cancel ends it';
    default:
      return undefined;
  }
}

function errorText(error: { name: string; message: string; code?: string }): string {
  const message = error.message.replace(/^(\[[^\]]+\] )+/, '');
  return `${error.name}${error.code === undefined ? '' : ` (${error.code})`}: ${message}`;
}

/** The run as JSON: times as ISO strings; `withSteps` adds the input, result and the steps. */
export function runJson(run: RunView, withSteps: boolean): Record<string, unknown> {
  const json: Record<string, unknown> = {
    id: run.id,
    workflow: run.name,
    version: run.version,
    runId: run.runId,
    state: run.state,
    attempts: run.attempts,
    stepsDone: run.steps.filter((step) => step.state === 'done').length,
    stepsTotal: run.steps.length,
    createdAt: iso(run.createdAtMs),
    updatedAt: iso(run.updatedAtMs),
    leaseExpiresAt: iso(run.leaseExpiresAtMs),
  };
  if (run.error !== undefined) json.error = run.error;
  if (!withSteps) return json;
  json.input = run.input;
  if (run.state === 'completed') json.result = run.result;
  json.steps = run.steps.map(stepJson);
  return json;
}

function stepJson(step: StepView): Record<string, unknown> {
  const { startedAtMs, endedAtMs, wakeAtMs, ...rest } = step;
  return {
    ...rest,
    ...(startedAtMs === undefined ? {} : { startedAt: iso(startedAtMs) }),
    ...(endedAtMs === undefined ? {} : { endedAt: iso(endedAtMs) }),
    ...(wakeAtMs === undefined ? {} : { wakeAt: iso(wakeAtMs) }),
  };
}

/**
 * JSON text of any recorded value: the serializer keeps what JSON cannot (a BigInt, a Map, bytes),
 * so those are written as the nearest JSON rather than failing the whole listing.
 */
export function jsonText(value: unknown, indent?: number): string {
  return JSON.stringify(value, jsonReplacer, indent) ?? '-';
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Map) return Object.fromEntries([...value].map(([key, item]) => [String(key), item]));
  if (value instanceof Set) return [...value];
  if (ArrayBuffer.isView(value)) return `<${value.byteLength} bytes>`;
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (value instanceof RegExp) return String(value);
  return value;
}

function preview(value: unknown, max: number): string {
  return clip(jsonText(value), max);
}

function clip(text: string, max: number): string {
  const line = text.replace(/\s*\n\s*/g, ' ');
  return line.length > max ? `${line.slice(0, max - 3)}...` : line;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** A time as `2025-01-31 12:00:00Z`. */
export function clock(ms: number): string {
  return iso(ms)
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

/** A length of time, short: `850ms`, `4.2s`, `12m`, `3h5m`. */
export function took(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const minutes = Math.round(ms / 60_000);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
}
