import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { columns, escapeControls } from '../../src/cli/text-table.js';

describe('the CLI tables', () => {
  it('escape control characters from stored data so they cannot drive the terminal', () => {
    const table = columns([
      ['id', 'topic'],
      ['m-1\u001b[2J', 'orders\u009b31m'],
    ]);
    assert.equal(table.includes('\u001b'), false);
    assert.equal(table.includes('\u009b'), false);
    assert.match(table, /m-1\\x1b\[2J {2}orders\\x9b31m/);
  });

  it('leave printable text, accents and emoji as they are', () => {
    assert.equal(escapeControls('Zoë 🎉 ok'), 'Zoë 🎉 ok');
  });
});
