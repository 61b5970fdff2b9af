import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Lease } from '../../src/core/engine.js';
import type { Outcome } from '../../src/core/outcome.js';
import { decodeResponse, encodeResponse, ResponseRecording } from '../../src/http/response-recording.js';

/** A lease that keeps what it was completed with. */
function fakeLease(maxResultBytes = 1024 * 1024): Lease & { completed: Outcome[] } {
  const completed: Outcome[] = [];
  return {
    completed,
    maxResultBytes,
    signal: new AbortController().signal,
    complete: async (outcome: Outcome) => void completed.push(outcome),
    release: async () => {},
    stopHeartbeat: () => {},
  } as unknown as Lease & { completed: Outcome[] };
}

describe('ResponseRecording', () => {
  it('stores text in its encoding and bytes as they are, in the order written, and decodes them back', async () => {
    const lease = fakeLease();
    const recording = new ResponseRecording(
      lease,
      new Set(['content-type']),
      () => true,
      () => {},
    );
    recording.write('{"é":');
    recording.write(Buffer.from('12'));
    recording.write('2c', 'hex');
    recording.write('AA==', 'base64');
    recording.write('ü}', 'latin1');
    recording.head(201, [
      ['Content-Type', 'application/json'],
      ['Set-Cookie', 'a=1'],
    ]);
    await recording.finish();
    const outcome = lease.completed[0];
    assert.ok(outcome !== undefined);
    const response = decodeResponse(outcome.payload);
    assert.equal(response.status, 201);
    assert.deepEqual(response.headers, [['content-type', 'application/json']]);
    assert.deepEqual(
      Buffer.from(response.body),
      Buffer.concat([Buffer.from('{"é":'), Buffer.from('12'), Buffer.from([0x2c, 0]), Buffer.from('ü}', 'latin1')]),
    );
  });

  it('counts text by its encoded bytes against the size limit', async () => {
    const lease = fakeLease(4);
    const recording = new ResponseRecording(
      lease,
      new Set(),
      () => true,
      () => {},
    );
    recording.write('éé'); // 4 bytes in UTF-8: at the limit
    recording.write('é'); // 6: over it
    await recording.finish();
    assert.equal(Buffer.from(lease.completed[0]?.payload ?? []).toString(), '6');
  });

  it('encodes a head with non-ASCII headers and an empty body', () => {
    const record = encodeResponse(200, [['link', '<https://example.com/ü>']], [], 0);
    assert.deepEqual(decodeResponse(record), {
      status: 200,
      headers: [['link', '<https://example.com/ü>']],
      body: Buffer.alloc(0),
    });
  });
});
