import type { ProbeTarget } from './http-probe.js';

/**
 * A body that is a different request: a JSON object with one number changed (or a string, or a
 * field added), other bodies with bytes appended.
 */
export function otherBody(target: ProbeTarget): { body: Buffer; change: string } {
  const text = target.body?.toString('utf8') ?? '';
  let parsed: unknown;
  try {
    parsed = text === '' ? {} : JSON.parse(text);
  } catch {
    return {
      body: Buffer.concat([target.body ?? Buffer.alloc(0), Buffer.from(' ')]),
      change: 'one byte appended to the body',
    };
  }
  if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
    const record = parsed as Record<string, unknown>;
    const numeric = Object.keys(record).find((name) => typeof record[name] === 'number');
    if (numeric !== undefined) {
      return {
        body: Buffer.from(JSON.stringify({ ...record, [numeric]: (record[numeric] as number) + 1 })),
        change: `"${numeric}" changed to ${(record[numeric] as number) + 1}`,
      };
    }
    const textual = Object.keys(record).find((name) => typeof record[name] === 'string');
    if (textual !== undefined) {
      return {
        body: Buffer.from(JSON.stringify({ ...record, [textual]: `${record[textual]}-other` })),
        change: `"${textual}" changed`,
      };
    }
    return {
      body: Buffer.from(JSON.stringify({ ...record, idemCheck: 'other' })),
      change: 'a field "idemCheck" added',
    };
  }
  return { body: Buffer.from(JSON.stringify([parsed, 'other'])), change: 'the body changed' };
}
