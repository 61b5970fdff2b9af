import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encryptionKeysFromEnv } from '../../src/cli/encryption-env.js';
import { OutcomeCodec, OutcomeKind } from '../../src/core/outcome.js';

const outcome = { kind: OutcomeKind.value, payload: new TextEncoder().encode('{"charge":"ch_1"}') };

describe('the command reads its encryption keys from the environment', () => {
  it('leaves results in the clear when IDEM_ENCRYPTION_KEY is unset or empty', () => {
    assert.equal(encryptionKeysFromEnv({}), undefined);
    assert.equal(encryptionKeysFromEnv({ IDEM_ENCRYPTION_KEY: '' }), undefined);
  });

  it('seals with IDEM_ENCRYPTION_KEY and still opens what the keys in IDEM_ENCRYPTION_OLD_KEYS sealed', () => {
    const before = new OutcomeCodec(encryptionKeysFromEnv({ IDEM_ENCRYPTION_KEY: 'first secret of the gateway' }));
    const sealedBefore = before.encode(outcome, 'record-1');
    const rotated = new OutcomeCodec(
      encryptionKeysFromEnv({
        IDEM_ENCRYPTION_KEY: 'second secret of the gateway',
        IDEM_ENCRYPTION_OLD_KEYS: ' first secret of the gateway , ',
      }),
    );
    assert.deepEqual(Buffer.from(rotated.decode(sealedBefore, 'record-1').payload), Buffer.from(outcome.payload));
    const sealedAfter = rotated.encode(outcome, 'record-2');
    assert.throws(() => before.decode(sealedAfter, 'record-2'), { code: 'RESULT_UNREADABLE' });
    const withoutOld = new OutcomeCodec(encryptionKeysFromEnv({ IDEM_ENCRYPTION_KEY: 'second secret of the gateway' }));
    assert.throws(() => withoutOld.decode(sealedBefore, 'record-1'), { code: 'RESULT_UNREADABLE' });
  });
});
