// The DynamoDB store without @aws-sdk/client-dynamodb installed says which `npm i` to run, even
// with a client given (the store builds its commands with the SDK), instead of an outage. The
// built package is copied to a temporary folder with no node_modules above it, so the SDK cannot
// be found, as after `npm i idem --omit=optional`. Needs `npm run build` first.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dist = fileURLToPath(new URL('../../dist/', import.meta.url));
if (!existsSync(join(dist, 'stores', 'dynamodb', 'index.js'))) {
  throw new Error('dist/stores/dynamodb is missing: run `npm run build` first.');
}
const copy = mkdtempSync(join(tmpdir(), 'idem-no-aws-sdk-'));
cpSync(dist, join(copy, 'dist'), { recursive: true });
writeFileSync(join(copy, 'package.json'), JSON.stringify({ name: 'idem', type: 'module' }));
after(() => rmSync(copy, { recursive: true, force: true }));

describe('the dynamodb store without @aws-sdk/client-dynamodb installed', () => {
  it('refuses with STORE_UNAVAILABLE and says to run npm i @aws-sdk/client-dynamodb, with or without a client', async () => {
    const { DynamoDbStore } = (await import(
      pathToFileURL(join(copy, 'dist', 'stores', 'dynamodb', 'index.js')).href
    )) as typeof import('../../src/stores/dynamodb/index.js');
    const client = { send: async () => ({}) };
    for (const store of [new DynamoDbStore({ region: 'us-east-1' }), new DynamoDbStore({ client })]) {
      await assert.rejects(store.get('any-key'), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'STORE_UNAVAILABLE');
        assert.equal(
          error.message,
          '[idem] [dynamodb] its driver @aws-sdk/client-dynamodb is not installed: run npm i @aws-sdk/client-dynamodb.',
        );
        return true;
      });
      await store.close();
    }
  });
});
