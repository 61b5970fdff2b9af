/**
 * Reads items in batches of `size`, lazily: the next batch is read only when asked for, so an
 * async iterable over a million rows is never held in memory at once. A sync iterable is read
 * without an `await` per item.
 */
export async function* batchesOf<T>(items: Iterable<T> | AsyncIterable<T>, size: number): AsyncGenerator<T[]> {
  if (Array.isArray(items)) {
    for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size);
  } else if (Symbol.asyncIterator in items) {
    yield* asyncBatches(items, size);
  } else {
    yield* syncBatches(items, size);
  }
}

function* syncBatches<T>(items: Iterable<T>, size: number): Generator<T[]> {
  let batch: T[] = [];
  for (const item of items) {
    batch.push(item);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

async function* asyncBatches<T>(items: AsyncIterable<T>, size: number): AsyncGenerator<T[]> {
  let batch: T[] = [];
  for await (const item of items) {
    batch.push(item);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}
