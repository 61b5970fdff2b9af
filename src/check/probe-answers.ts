import type { ProbeResult } from './http-probe.js';

/** A 2xx status. */
export function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

/** An answer that says "not yet": retry later with the same key. */
export function isInProgress(answer: ProbeResult): boolean {
  return !answer.ok || answer.status === 409 || answer.status === 425 || answer.status === 503;
}

/** An answer that says it is a replay (`Idempotent-Replayed: true`). */
export function isReplayed(answer: ProbeResult): boolean {
  return answer.ok && String(answer.headers['idempotent-replayed']).toLowerCase() === 'true';
}

/** ` (Idempotent-Replayed: true)` for a replay, to append to a summary; else nothing. */
export function replayedNote(answer: ProbeResult): string {
  return isReplayed(answer) ? ' (Idempotent-Replayed: true)' : '';
}

/** Both answered, with the same status and the same body bytes. */
export function sameAnswer(a: ProbeResult, b: ProbeResult): boolean {
  return a.ok && b.ok && a.status === b.status && a.body.equals(b.body);
}

/** How many different answers (status and body) there are among `answers`. */
export function distinctBodies(answers: ProbeResult[]): number {
  return new Set(answers.map((answer) => (answer.ok ? `${answer.status} ${answer.body.toString('base64')}` : ''))).size;
}

/** How many answers of each status (replays apart), e.g. `9 x 200 replayed, 1 x 201`. */
export function tally(answers: ProbeResult[]): string {
  const counts = new Map<string, number>();
  for (const answer of answers) {
    const label = answer.ok ? `${answer.status}${isReplayed(answer) ? ' replayed' : ''}` : 'no answer';
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return [...counts].map(([label, count]) => `${count} x ${label}`).join(', ');
}

/** The distinct statuses among `answers`, e.g. `409/425`. */
export function statusesOf(answers: ProbeResult[]): string {
  return [...new Set(answers.map((answer) => (answer.ok ? String(answer.status) : 'no answer')))].join('/');
}

/** One answer in a line: status, the replay header, the start of the body. */
export function describe(answer: ProbeResult): string {
  if (!answer.ok) return `no answer: ${answer.error}`;
  const text = answer.body.toString('utf8').replace(/\s+/g, ' ').trim();
  const body = text.length > 100 ? `${text.slice(0, 100)}...` : text;
  return `${answer.status}${isReplayed(answer) ? ' (Idempotent-Replayed: true)' : ''}${body ? ` ${body}` : ''}`;
}
