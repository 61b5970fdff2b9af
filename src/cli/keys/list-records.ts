import type { AdminStore, ListOptions, ListPage } from '../../core/store.js';
import { StoreLimits } from '../../core/store.js';

/**
 * Up to `limit` records from `cursor` on, in pages the store accepts (at most
 * `StoreLimits.maxListLimit` each): `idem keys list --limit 5000` is one listing to the operator.
 */
export async function listRecords(store: AdminStore, options: ListOptions & { limit: number }): Promise<ListPage> {
  const records: ListPage['records'] = [];
  let cursor = options.cursor;
  for (;;) {
    const page = await store.list({
      ...options,
      limit: Math.min(StoreLimits.maxListLimit, options.limit - records.length),
      ...(cursor === undefined ? {} : { cursor }),
    });
    records.push(...page.records);
    cursor = page.nextCursor;
    if (cursor === undefined || records.length >= options.limit) return { records, nextCursor: cursor };
  }
}
