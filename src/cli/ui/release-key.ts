/**
 * The dashboard's one action: release an in-progress key, as `idem keys release` does, so that
 * a retry runs at once instead of waiting for the lease to end. A key whose lease is still live
 * may have a holder at work: releasing it lets the work run twice, so that needs `force`.
 */
import type { AdminStore } from '../../core/store.js';

export type ReleaseAnswer =
  | { status: 200; body: { released: true; key: string; leaseLeftMs: number; message: string } }
  | { status: 404 | 409 | 428; body: { code: string; message: string; leaseLeftMs?: number } };

/** Releases `key` when it is in progress (and, with a live lease, only with `force`). */
export async function releaseKey(
  store: AdminStore,
  key: string,
  force: boolean,
  nowMs: number,
): Promise<ReleaseAnswer> {
  const record = await store.get(key);
  if (record === null) return { status: 404, body: { code: 'NOT_FOUND', message: `no record with store key ${key}.` } };
  if (record.state !== 'in_progress') {
    return {
      status: 409,
      body: {
        code: 'NOT_IN_PROGRESS',
        message: `${key} is completed: it holds a stored response, and only an in-progress key can be released.`,
      },
    };
  }
  const leaseLeftMs = Math.max(0, record.leaseExpiresAtMs - nowMs);
  if (leaseLeftMs > 0 && !force) {
    return {
      status: 428,
      body: {
        code: 'LEASE_LIVE',
        leaseLeftMs,
        message: `${key} is still leased for ${Math.ceil(leaseLeftMs / 1000)} s: its holder may be at work, and releasing it lets the work run twice. Confirm with force to release it anyway.`,
      },
    };
  }
  // Released by the token read above: if the holder finished or another took over meanwhile,
  // nothing is released.
  if (!(await store.release(key, record.token))) {
    return {
      status: 409,
      body: {
        code: 'CHANGED',
        message: `${key} changed while releasing it (its holder finished or another took over); look again.`,
      },
    };
  }
  return {
    status: 200,
    body: {
      released: true,
      key,
      leaseLeftMs,
      message:
        `released ${key}: the next request with this key runs again` +
        (leaseLeftMs > 0
          ? ` (its lease had ${Math.ceil(leaseLeftMs / 1000)} s left).`
          : ' (its lease had already ended).'),
    },
  };
}
