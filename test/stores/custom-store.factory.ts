import { FakeKvServer } from '../../examples/custom-store/fake-kv.js';
import { KvStore } from '../../examples/custom-store/kv-store.js';
import type { Store } from '../../src/core/store.js';

// One fake service for the whole run; each namespace is a prefix in it, as a real service would be shared.
new FakeKvServer('conformance', 'test-token');

export async function createStore(namespace: string): Promise<Store> {
  return new KvStore({ url: 'kv://test-token@conformance', prefix: `${namespace}:` });
}
