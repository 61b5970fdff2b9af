import { type CustomDecorator, SetMetadata } from '@nestjs/common';
import type { RouteIdempotencyOptions } from '../shared/route-options.js';

/** The metadata key `@Idempotent()` sets on a handler or a controller. */
export const IDEMPOTENT_METADATA = 'idem:idempotent';

/**
 * Options of one route or controller, over those given to the module or the interceptor: the
 * per-route options every adapter takes (Fastify's `config.idempotency` too). The store is
 * shared; everything else may differ per route (`required`, `fingerprint`, `policy`, `leaseMs`...).
 */
export type IdempotentRouteOptions = RouteIdempotencyOptions;

/**
 * Protects a route handler, or every route of a controller, with the `Idempotency-Key` header,
 * with options of its own. `@Idempotent(false)` turns protection off for a route, such as a
 * route of a protected controller, or any route when the interceptor protects `all`. Options on
 * a handler override those on its controller.
 *
 * @example
 * ```ts
 * @Controller('charges')
 * export class ChargesController {
 *   @Post()
 *   @Idempotent({ required: true, fingerprint: { excludePaths: ['meta.sentAt'] } })
 *   create(@Body() body: CreateCharge) {
 *     return this.charges.create(body);
 *   }
 * }
 * ```
 */
export function Idempotent(options: IdempotentRouteOptions | false = {}): CustomDecorator<string> {
  return SetMetadata(IDEMPOTENT_METADATA, options);
}
