import { PATTERNS, type StormResult } from './retry-storm.js';

/** One phase of the demo: the storm against the API directly, or through the gateway. */
export interface DemoPhase {
  label: string;
  storm: StormResult;
  /** Charges the API made in this phase. */
  charges: number;
  /** Money charged in this phase, in cents. */
  chargedCents: number;
}

export function money(cents: number): string {
  return `$${(cents / 100).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

/** The result table: charges without Idem and with it. */
export function demoTable(payments: number, intendedCents: number, phases: DemoPhase[]): string {
  const perPayment = phases[0] === undefined ? 0 : phases[0].storm.attempts / payments;
  const rows = [
    ['', 'attempts', 'charges', 'charged', 'what the clients were told'],
    ...phases.map((phase) => [
      phase.label,
      String(phase.storm.attempts),
      String(phase.charges),
      money(phase.chargedCents),
      told(phase.storm),
    ]),
  ];
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] as string).length))) ?? [];
  const line = (row: string[]) =>
    `  ${row.map((cell, column) => (column === 0 || column === 4 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('   ')}`.trimEnd();
  const through = phases.at(-1);
  const direct = phases[0];
  const verdict =
    through !== undefined && direct !== undefined
      ? through.charges === payments
        ? `Idem: ${through.charges} charges instead of ${direct.charges}, exactly one per payment (${money(intendedCents)} meant, ${money(through.chargedCents)} charged).`
        : `Unexpected: ${through.charges} charges through Idem for ${payments} payments.`
      : '';
  return [
    `Retry storm: ${payments} payments x ${perPayment} attempts each, all with the payment's Idempotency-Key:`,
    `  ${Object.values(PATTERNS).join(', ')} (4 of each).`,
    '',
    line(rows[0] as string[]),
    ...rows.slice(1).map(line),
    '',
    verdict,
  ].join('\n');
}

function told(storm: StormResult): string {
  const parts = [`${storm.ids.size} payment id${storm.ids.size === 1 ? '' : 's'}`];
  if (storm.replayed > 0) parts.push(`${storm.replayed} replays`);
  if (storm.inProgress > 0) parts.push(`${storm.inProgress} x 409 then re-sent`);
  if (storm.timedOut > 0) parts.push(`${storm.timedOut} gave up waiting`);
  return parts.join(', ');
}

/** The lines to try by hand once the demo keeps running. */
export function curlLines(gateway: string, api: string, self: string, storeUrl: string): string {
  const post = (base: string, key: string, amount: number) =>
    `curl -i -X POST ${base}/payments -H 'Authorization: Bearer demo-client-1' -H 'Idempotency-Key: ${key}' -H 'Content-Type: application/json' -d '{"amount":${amount},"currency":"usd"}'`;
  return [
    `The payments API and the gateway keep running (Ctrl-C stops both):`,
    `  payments API, unprotected   ${api}`,
    `  idem serve gateway          ${gateway}  ->  ${api}   (store ${storeUrl})`,
    '',
    'Try it:',
    '  # a charge through the gateway; run the same line again: the answer is replayed (Idempotent-Replayed: true).',
    '  # Keys belong to the caller: the gateway tells callers apart by their Authorization header (or API key, or cookie).',
    `  ${post(gateway, 'order-42', 1999)}`,
    '  # the same key with another amount: 422, nothing charged',
    `  ${post(gateway, 'order-42', 5000)}`,
    '  # straight to the API, every run charges again',
    `  ${post(api, 'order-42', 1999)}`,
    '  # what was really charged',
    `  curl -s ${api}/payments`,
    '  # the checker: fails against the API, passes through the gateway',
    `  ${self} check ${api}/payments --body '{"amount":100,"currency":"usd"}' --verify ${api}/payments`,
    `  ${self} check ${gateway}/payments --body '{"amount":100,"currency":"usd"}' --verify ${api}/payments`,
    '  # the stored keys, and the gateway health and metrics',
    `  ${self} keys list --store ${storeUrl}`,
    `  curl -s ${gateway}/__idem/health`,
    `  curl -s ${gateway}/__idem/metrics | grep '^idem_'`,
  ].join('\n');
}
