/** How `idem backfill` shows a run: a bar on a terminal, a line now and then elsewhere, and the summary. */
import cliProgress from 'cli-progress';
import type { BackfillProgress, BackfillResult } from '../../backfill/index.js';
import { reasonOf } from '../cli-error.js';
import type { Output } from '../commands/serve.js';

/** Shows progress as it comes, and stops showing it. */
export interface ProgressView {
  /** How often the run should report, in ms. */
  readonly intervalMs: number;
  update(progress: BackfillProgress): void;
  stop(): void;
}

/** Failed items printed in the summary at most; the JSON summary lists them all. */
const LISTED_FAILURES = 20;

/** A bar redrawn on stderr, 5 times a second, for a terminal. */
export function barView(stream: NodeJS.WritableStream = process.stderr): ProgressView {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      hideCursor: true,
      fps: 5,
      format: (options, params, payload: { progress?: BackfillProgress }) => {
        const progress = payload.progress;
        if (progress === undefined) return 'backfill: starting';
        const known = progress.total !== undefined && progress.total > 0;
        const drawn = known
          ? `${cliProgress.Format.BarFormat(params.progress, options)} ${Math.floor(params.progress * 100)}% `
          : '';
        return `${progress.name} ${drawn}${line(progress)}`;
      },
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    intervalMs: 200,
    update(progress) {
      if (!started) {
        bar.start(progress.total ?? 0, progress.settled, { progress });
        started = true;
      } else bar.update(progress.settled, { progress });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** A line on stderr every 10 s, for logs (stderr is not a terminal). */
export function lineView(output: Output): ProgressView {
  return {
    intervalMs: 10_000,
    update(progress) {
      output.err(`idem: backfill ${progress.name}: ${line(progress)}`);
    },
    stop() {},
  };
}

/** Nothing shown (`--no-progress`, `--json`). */
export const quietView: ProgressView = { intervalMs: 60_000, update() {}, stop() {} };

/** `1,200/10,000 | 1,150 done, 40 skipped, 10 failed | 2,310/s | 4s left`. */
function line(progress: BackfillProgress): string {
  const of = progress.total === undefined ? '' : `/${count(progress.total)}`;
  const waiting = progress.waiting > 0 ? `, ${count(progress.waiting)} held by another runner` : '';
  const left = progress.remainingMs === undefined ? '' : ` | ${seconds(progress.remainingMs)} left`;
  return (
    `${count(progress.settled)}${of} | ${count(progress.done)} done, ${count(progress.skipped)} skipped, ` +
    `${count(progress.failed)} failed${waiting} | ${count(Math.round(progress.itemsPerSecond))}/s${left}`
  );
}

/** The summary lines of a finished run, for stdout. */
export function summaryLines(result: BackfillResult, where: string): string[] {
  const settled = result.done + result.skipped + result.failed.length;
  const rate = result.elapsedMs > 0 ? Math.round((settled * 1000) / result.elapsedMs) : settled;
  const lines = [
    `idem: backfill ${result.name} on ${where}: ${count(result.done)} done, ${count(result.skipped)} skipped (done before), ` +
      `${count(result.failed.length)} failed, in ${seconds(result.elapsedMs)} (${count(rate)} items/s).`,
  ];
  if (result.retried > 0) lines.push(`idem: ${count(result.retried)} handler call(s) failed and were tried again.`);
  if (result.stopped) lines.push('idem: stopped before the end: run the same command again to go on.');
  if (result.failed.length > 0) {
    lines.push(`idem: failed (released: the next run tries them again):`);
    for (const failure of result.failed.slice(0, LISTED_FAILURES)) {
      lines.push(`  ${failure.key}: ${reasonOf(failure.error)}`);
    }
    if (result.failed.length > LISTED_FAILURES) {
      lines.push(`  ... and ${count(result.failed.length - LISTED_FAILURES)} more (--json lists them all)`);
    }
  }
  return lines;
}

/** The summary as one JSON object. */
export function summaryJson(result: BackfillResult, where: string): string {
  return JSON.stringify({
    name: result.name,
    store: where,
    done: result.done,
    skipped: result.skipped,
    failed: result.failed.map((failure) => ({ key: failure.key, error: reasonOf(failure.error) })),
    retried: result.retried,
    stopped: result.stopped,
    elapsedMs: Math.round(result.elapsedMs),
  });
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}
