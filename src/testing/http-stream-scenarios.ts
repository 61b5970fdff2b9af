import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type SendOptions, type SentResponse, send } from './http-client.js';
import type { ScenarioRegistrar } from './http-scope-scenarios.js';

const CALLER = { authorization: 'Bearer conformance-client' };

function postStream(url: string, key: string, options: SendOptions = {}): Promise<SentResponse> {
  return send(`${url}/stream`, { ...options, headers: { ...CALLER, 'idempotency-key': key } });
}

/**
 * Streamed responses: recorded as they stream and replayed byte for byte; a client that cancels
 * mid-stream does not stop the recording, so its retry gets the whole response.
 */
export function streamScenarios(scenario: ScenarioRegistrar): void {
  scenario('records a streamed response while it streams and replays the same bytes', {}, async ({ url, app }) => {
    const k = randomUUID();
    const first = await postStream(url, k, { body: { chunks: 8 } });
    assert.equal(first.status, 200);
    assert.match(first.text, /chunk 7 of run 1/);
    const again = await postStream(url, k, { body: { chunks: 8 } });
    assert.equal(again.text, first.text);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.equal(app.count('stream'), 1);
  });

  scenario(
    'stores the whole streamed response when the client cancels after the first chunk, so the retry replays it',
    {},
    async ({ url, app }) => {
      const k = randomUUID();
      const body = { chunks: 6, ms: 40 };
      await assert.rejects(postStream(url, k, { body, abortAfterFirstChunk: true }));
      // A client honouring 409: the handler streams on for a while after its client left.
      let retry = await postStream(url, k, { body });
      for (let waited = 0; retry.status === 409 && waited < 5000; waited += 100) {
        await sleep(100);
        retry = await postStream(url, k, { body });
      }
      assert.equal(retry.status, 200, `expected the stored 200, got ${retry.status}: ${retry.text}`);
      assert.equal(retry.headers['idempotent-replayed'], 'true');
      const expected = Array.from({ length: 6 }, (_, i) => `chunk ${i} of run 1\n`).join('');
      assert.equal(retry.text, expected, 'the replay carries every chunk the handler streamed');
      assert.equal(app.count('stream'), 1, 'the handler ran once');
    },
  );
}
