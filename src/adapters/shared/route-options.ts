import { HttpIdempotency, type HttpIdempotencyOptions } from '../../http/http-idempotency.js';

/**
 * Options of one route over the adapter's: everything but the store, which the routes share
 * (`required`, `policy`, `fingerprint`, `leaseMs`...). Fastify's `config.idempotency` and Nest's
 * `@Idempotent({...})` take this type.
 */
export type RouteIdempotencyOptions = Omit<HttpIdempotencyOptions, 'store'>;

/**
 * Idem on one route: `false` turns it off, `true` (or leaving it out) uses the adapter's options,
 * an object overrides some of them for this route only.
 */
export type RouteIdempotency = boolean | RouteIdempotencyOptions;

/** The options every adapter takes: the HTTP layer's, and how to name a request's route. */
export interface AdapterOptions<Request> extends HttpIdempotencyOptions {
  /**
   * The route of a request, for scope and fingerprint (a key may be refused on another route).
   * Default: the pattern the framework matched (`/charges/:id`) when it knows one, else the path
   * without the query.
   */
  route?: (request: Request) => string;
}

/**
 * The HTTP layer of each route, from the adapter's options and the route's setting: `undefined`
 * for a route turned off, the shared layer for `true`, an empty object or none, else one layer
 * per setting object (built once; bad options throw on the first call, so call it when the route
 * is declared if the framework lets you). Settings given as several layers (a controller's, then
 * a handler's) are merged with `mergeRouteSettings` first.
 */
export function routeIdempotency(
  options: HttpIdempotencyOptions,
  shared: HttpIdempotency = new HttpIdempotency(options),
): (setting: RouteIdempotency | undefined) => HttpIdempotency | undefined {
  const perRoute = new WeakMap<RouteIdempotencyOptions, HttpIdempotency>();
  return (setting) => {
    if (setting === false) return undefined;
    if (setting === undefined || setting === true || Object.keys(setting).length === 0) return shared;
    let http = perRoute.get(setting);
    if (http === undefined) {
      // The store stays the adapter's, whatever a JavaScript caller put in the route's options.
      http = new HttpIdempotency({ ...options, ...setting, store: options.store });
      perRoute.set(setting, http);
    }
    return http;
  };
}

/**
 * Merges settings from the outermost (a controller) to the innermost (a handler): a boolean
 * replaces what came before it; an object merges over an earlier object, inner keys winning, and
 * stands alone after a boolean (so a handler's object turns on a route its controller turned
 * off). `undefined` when none is given.
 */
export function mergeRouteSettings(...settings: (RouteIdempotency | undefined)[]): RouteIdempotency | undefined {
  let merged: RouteIdempotency | undefined;
  for (const setting of settings) {
    if (setting === undefined) continue;
    if (typeof setting === 'boolean') merged = setting;
    else merged = { ...(typeof merged === 'object' ? merged : {}), ...setting };
  }
  return merged;
}
