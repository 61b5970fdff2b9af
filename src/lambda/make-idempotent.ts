import { ErrorCode, IdempotencyError, type IdempotentOptions, idempotent } from '../core/index.js';
import { InvocationDeadline } from './invocation-deadline.js';

/**
 * The part of the Lambda context the wrapper reads. The `context` Lambda passes to a handler
 * (`Context` of `@types/aws-lambda`) has both. A handler may type its context as it likes (any
 * object): in a local run without these members, keys share one scope (`(local)`) and leases
 * last `leaseMs`.
 */
/** The scope of keys when the context names no function (a local call); no Lambda function name has parentheses. */
const LOCAL_SCOPE = '(local)';

export interface LambdaContextLike {
  /** The function's name: the default scope of keys, so two functions that share a table never meet. */
  readonly functionName?: string;
  /** How long, in ms, until Lambda stops this invocation: no lease outlives it. */
  getRemainingTimeInMillis?(): number;
}

/**
 * The options of `idempotent()`, with the key, scope and fingerprint derived from the event (and
 * the context). `leaseMs` is the longest a lease lasts: within an invocation it ends by the
 * invocation's deadline, whichever comes first.
 */
export interface LambdaIdempotencyOptions<E, C extends object, R>
  extends Omit<IdempotentOptions<[event: E, context: C], R>, 'key' | 'scope' | 'fingerprint' | 'name'> {
  /**
   * Namespace of this handler's keys, so two handlers of one function that get the same event keep
   * two records. Default: the handler's `name`, or `handler` when it has none.
   */
  name?: string;
  /**
   * Derives the key from the event, before the handler runs: a message id, an order id, the
   * `Idempotency-Key` header of an API Gateway event. `undefined`, `null` or `''` fails with
   * `KEY_MISSING`. Default: the fingerprint of the whole event, so equal events are one operation.
   */
  key?: (event: E, context: C) => string | undefined | null;
  /**
   * The scope of keys (a tenant, a user); keys in two scopes never meet. Default: the function's
   * name (`context.functionName`), so functions that share a table and get equal events keep
   * apart. A scope you give replaces it.
   */
  scope?: (event: E, context: C) => string | undefined | null;
  /**
   * The value whose canonical form is the fingerprint: the same key with another fingerprint fails
   * with `FINGERPRINT_MISMATCH`. Default: the whole event (never the context, which differs on
   * every invocation).
   */
  fingerprint?: (event: E, context: C) => unknown;
}

/**
 * Wraps a Lambda handler so that an event delivered more than once (a retried async invocation,
 * an SQS or EventBridge redelivery, a client's retry through API Gateway) runs the handler once:
 * the first invocation runs it and stores what it returns; a repeat gets the stored result back;
 * a duplicate that arrives while the first still runs fails with `IN_PROGRESS` (so Lambda or the
 * queue retries it later), or waits with `onInProgress: 'wait'`. An error thrown by the handler
 * releases the key, so the retry runs again.
 *
 * The in-progress lease ends by the invocation's deadline (`context.getRemainingTimeInMillis()`),
 * or after `leaseMs`, whichever is first, the heartbeat included: a timed-out invocation leaves a
 * key the retry can take over at once.
 *
 * @example
 * ```ts
 * import { DynamoDbStore } from 'idem/dynamodb';
 * import { makeIdempotent } from 'idem/lambda';
 *
 * const store = new DynamoDbStore({ table: process.env.IDEM_TABLE });
 *
 * export const handler = makeIdempotent(
 *   async (event: { orderId: string; amount: number }) => ({ charged: await charge(event.amount) }),
 *   { store, key: (event) => event.orderId },
 * );
 * ```
 */
export function makeIdempotent<E, C extends object, R>(
  handler: (event: E, context: C) => R | Promise<R>,
  options: LambdaIdempotencyOptions<E, C, Awaited<R>>,
): (event: E, context: C) => Promise<Awaited<R>> {
  if (typeof handler !== 'function') {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      '[idem] makeIdempotent(handler, options) needs the handler function as its first argument.',
    );
  }
  if (options?.store === undefined || typeof options.store.claim !== 'function') {
    throw new IdempotencyError(
      ErrorCode.INVALID_OPTIONS,
      "[idem] makeIdempotent needs `store`: a store every invocation shares, such as new DynamoDbStore() from 'idem/dynamodb'.",
    );
  }
  const deadline = new InvocationDeadline();
  const run = idempotent(handler, {
    ...options,
    store: deadline.boundStore(options.store),
    name: options.name ?? (handler.name || 'handler'),
    fingerprint: options.fingerprint ?? ((event) => event),
    scope:
      options.scope ?? ((_event, context) => (context as LambdaContextLike | undefined)?.functionName || LOCAL_SCOPE),
  });
  const now = options.now ?? Date.now;

  return async function idempotentHandler(event: E, context: C): Promise<Awaited<R>> {
    const remainingMs = remainingTimeOf(context as LambdaContextLike | undefined);
    if (remainingMs === undefined) return run(event, context);
    return deadline.run(now() + remainingMs, () => run(event, context));
  };
}

/** The ms the invocation has left, or `undefined` when the context cannot say (a local call). */
function remainingTimeOf(context: LambdaContextLike | undefined): number | undefined {
  if (typeof context?.getRemainingTimeInMillis !== 'function') return undefined;
  const remainingMs = context.getRemainingTimeInMillis();
  return Number.isFinite(remainingMs) ? Math.max(0, remainingMs) : undefined;
}
