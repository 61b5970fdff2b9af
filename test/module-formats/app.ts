// What a user writes, checked in every module format by scripts/check-module-formats.mjs: it is
// copied into each fixture project beside (esm-nodenext, cjs-node16, node10, bundler), type-checked
// there with that project's tsconfig, compiled, and run with node. In the CommonJS projects the
// imports below compile to require() calls, so the run proves that require('idem/memory') works
// and that a claim round-trips on the MemoryStore through the CommonJS entries.
import { type AdminStore, idempotent, isIdempotencyError } from 'idem';
import { type ExpressIdempotencyMiddleware, idempotency } from 'idem/express';
import { HttpIdempotency, type HttpIdempotencyOptions } from 'idem/http';
import { MemoryStore } from 'idem/memory';

async function main(): Promise<void> {
  // A store from one subpath goes into the engine of another: one set of types across subpaths.
  const store: AdminStore = new MemoryStore();
  let charges = 0;
  const charge = idempotent(async (orderId: string) => `ch_${++charges}_${orderId}`, { name: 'charge', store });
  const first = await charge('order-1');
  const replayed = await charge('order-1');
  if (first !== replayed || charges !== 1) {
    throw new Error(`the repeated call ran again: ${first} then ${replayed}, ${charges} charges`);
  }
  const { records } = await store.list();
  if (records.length !== 1 || records[0]?.state !== 'completed') {
    throw new Error(`expected one completed record, got ${JSON.stringify(records)}`);
  }

  const keyless = idempotent(async () => 'never', { name: 'keyless', store, key: () => '' });
  const refusal = await keyless().catch((error: unknown) => error);
  if (!isIdempotencyError(refusal, 'KEY_MISSING')) throw new Error(`expected KEY_MISSING, got ${String(refusal)}`);

  const options: HttpIdempotencyOptions = { store };
  const middleware: ExpressIdempotencyMiddleware = idempotency(options);
  if (typeof middleware !== 'function' || !(new HttpIdempotency(options).engine.store instanceof MemoryStore)) {
    throw new Error('idem/express or idem/http did not build from the same store');
  }
  await store.close();
  console.log(`claimed, completed and replayed ${first} on the MemoryStore`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
