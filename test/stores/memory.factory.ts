import type { Store } from '../../src/core/store.js';
import { MemoryStore } from '../../src/stores/memory/index.js';

export async function createStore(_namespace: string): Promise<Store> {
  return new MemoryStore();
}
