import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redisMisconfiguration } from '../../src/stores/redis/errors.js';

describe('redis: which replies are configuration mistakes', () => {
  it('takes a permission refused at the top level or inside a script as a misconfiguration, naming the commands', () => {
    for (const message of [
      "NOPERM User idem has no permissions to run the 'zadd' command",
      "ERR The user executing the script can't run this command or subcommand script: b2a6, on @user_script:1.",
    ]) {
      const advice = redisMisconfiguration(new Error(message));
      assert.ok(advice !== undefined, message);
      for (const command of ['EVALSHA', 'HGET', 'HMGET', 'ZADD', 'PEXPIRE'])
        assert.match(advice, new RegExp(`\\b${command}\\b`));
    }
  });

  it('leaves outages and other errors to be reported as such', () => {
    for (const message of [
      'ECONNREFUSED 127.0.0.1:6379',
      'ERR unknown command',
      'LOADING Redis is loading the dataset',
    ]) {
      assert.equal(redisMisconfiguration(new Error(message)), undefined, message);
    }
  });
});
