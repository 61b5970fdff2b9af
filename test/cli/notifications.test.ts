// `idem notifications log` as users run it, against a SQLite file this process writes with idem/notify.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { Notifier } from '../../src/notify/index.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { runIdem, tempDir } from './helpers.js';

const file = join(tempDir(), 'notifications.db');
const storeUrl = `sqlite:${file}`;

describe('idem notifications log', () => {
  before(async () => {
    const store = new SqliteStore({ path: file });
    const notifier = new Notifier({ store });
    const send = async () => ({ messageId: 'msg-1' });
    const sms = { recipient: 'ann', event: 'shipped:1', channel: 'sms', send };
    await notifier.notify(sms);
    await notifier.notify(sms);
    await notifier.notify({ ...sms, override: { reason: 'asked again' } });
    await notifier.notify({ recipient: 'bob', event: 'shipped:2', channel: 'sms', send });
    await store.close();
  });

  it('prints what was sent, suppressed and overridden for a recipient, as JSON lines', async () => {
    const run = await runIdem(['notifications', 'log', '--store', storeUrl, '--recipient', 'ann', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const entries = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    // Entries written in one millisecond may come in any order: compare them as a set.
    const summary = (entry: Record<string, unknown>) =>
      JSON.stringify([entry.kind, entry.recipient, entry.event, entry.channel, entry.messageId, entry.because]);
    assert.deepEqual(
      entries.map(summary).sort(),
      [
        JSON.stringify(['sent', 'ann', 'shipped:1', 'sms', 'msg-1', undefined]),
        JSON.stringify(['sent', 'ann', 'shipped:1', 'sms', 'msg-1', undefined]),
        JSON.stringify(['suppressed', 'ann', 'shipped:1', 'sms', 'msg-1', 'duplicate']),
      ].sort(),
    );
    assert.deepEqual(
      entries.filter((entry) => entry.override !== undefined).map((entry) => entry.override.reason),
      ['asked again'],
    );
  });

  it('prints a table of every notification, filtered by channel, with the override reason', async () => {
    const run = await runIdem(['notifications', 'log', '--store', storeUrl, '--channel', 'sms']);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^time\s+kind\s+channel\s+recipient\s+event\s+message id\s+why$/);
    assert.equal(lines.length, 5);
    assert.ok(lines.some((line) => /sent\s+sms\s+bob\s+shipped:2/.test(line)));
    assert.ok(lines.some((line) => line.endsWith('override: asked again')));
  });

  it('refuses an unknown --kind with one line and exit code 2', async () => {
    const run = await runIdem(['notifications', 'log', '--store', storeUrl, '--kind', 'lost']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^idem: --kind "lost": use one of sent, failed, suppressed\.\n$/);
  });
});
