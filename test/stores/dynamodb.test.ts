import { runStoreConformance } from '../../src/testing/index.js';

runStoreConformance({
  name: 'dynamodb',
  factoryModule: new URL('./dynamodb.factory.ts', import.meta.url).href,
  skip: {
    binary:
      'a DynamoDB item holds 400 KB, so the 1 MiB result cannot fit; dynamodb.test.ts round-trips every byte value and the largest result the store declares (maxResultBytes)',
  },
});
