import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type CallHandler,
  type ExecutionContext,
  HttpException,
  type NestInterceptor,
  StreamableFile,
} from '@nestjs/common';
import { catchError, defer, type Observable, of } from 'rxjs';
import type { HttpIdempotency } from '../../http/http-idempotency.js';
import type { HttpRequestInfo, HttpResponseData } from '../../http/http-types.js';
import { requestTooLarge } from '../../http/problem.js';
import { groupHeaders } from '../shared/header-groups.js';
import { drainRefusedBody, nodeHeader, readUnparsedBody } from '../shared/node-request.js';
import { sendResponse } from '../shared/node-response.js';
import { recordServerResponse } from '../shared/node-response-recorder.js';
import { setPassHeaders } from '../shared/pass-headers.js';
import {
  type AdapterOptions,
  mergeRouteSettings,
  type RouteIdempotency,
  routeIdempotency,
} from '../shared/route-options.js';
import { IDEMPOTENT_METADATA, type IdempotentRouteOptions } from './idempotent.decorator.js';

export interface NestIdempotencyOptions extends AdapterOptions<IncomingMessage> {
  /**
   * Which routes are protected. `decorated`: only handlers and controllers marked
   * `@Idempotent()`. `all`: every route, except those marked `@Idempotent(false)`; methods
   * still decide (POST and PATCH by default). Default `decorated`.
   */
  protect?: 'decorated' | 'all';
}

/** The parts of a request on `@nestjs/platform-express` the interceptor reads. */
interface NestExpressRequest extends IncomingMessage {
  body?: unknown;
  path?: string;
  originalUrl?: string;
  baseUrl?: string;
  route?: { path?: unknown };
}

type Handler = ExecutionContext['getHandler'] extends () => infer F ? F : never;

/** How one route handler is protected, worked out on its first request. */
interface RouteSetup {
  /** Its HTTP layer: the shared one, or one with the route's own options. */
  http: HttpIdempotency;
  /** The handler writes to the response itself (`@Res()` or `@Next()` without passthrough): Nest sends nothing. */
  writesItsResponse: boolean;
}

/** Nest's metadata of route parameters (`@nestjs/common/constants`), by value: the package root does not export them. */
const ROUTE_ARGS_METADATA = '__routeArguments__';
const RESPONSE_PASSTHROUGH_METADATA = '__responsePassthrough__';
/** `RouteParamtypes.RESPONSE` and `RouteParamtypes.NEXT`, as they lead the keys of `ROUTE_ARGS_METADATA`. */
const RESPONSE_PARAM_TYPES = new Set(['1', '2']);

/**
 * NestJS interceptor (on `@nestjs/platform-express`) for the `Idempotency-Key` header. The first
 * request runs the handler and its response is recorded as it is written; a repeated key gets
 * the stored response and the handler does not run.
 *
 * Register it with `IdempotencyModule.forRoot(options)`, or yourself with
 * `app.useGlobalInterceptors(new IdempotencyInterceptor(options))` or `@UseInterceptors()`.
 * Register it before interceptors that transform response values (`map`), so that they never
 * see a replay. A handler that throws releases the key, so a retry runs again; an
 * `HttpException` is an answer like any other, stored under the cache policy.
 *
 * @example
 * ```ts
 * const app = await NestFactory.create(AppModule);
 * app.useGlobalInterceptors(new IdempotencyInterceptor({ store: new SqliteStore() }));
 *
 * // in a controller
 * @Post('charges')
 * @Idempotent()
 * create(@Body() body: CreateCharge) { return this.charges.create(body); }
 * ```
 */
export class IdempotencyInterceptor implements NestInterceptor {
  readonly #options: NestIdempotencyOptions;
  readonly #httpFor: (setting: RouteIdempotency | undefined) => HttpIdempotency | undefined;
  /** The setup of each handler, `null` when it is not protected; worked out on its first request. */
  readonly #byHandler = new WeakMap<Handler, RouteSetup | null>();

  constructor(options: NestIdempotencyOptions) {
    this.#options = options;
    this.#httpFor = routeIdempotency(options);
  }

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    if (context.getType() !== 'http') return next.handle();
    const route = this.#setupOf(context);
    if (route === null) return next.handle();
    const { http } = route;
    const req = context.switchToHttp().getRequest<NestExpressRequest>();
    const res = context.switchToHttp().getResponse<ServerResponse>();
    const header = nodeHeader(req);
    if (!http.applies(req.method ?? 'GET', header)) return next.handle();

    // No parser read this body (the app runs without Nest's body parser, or the content type is
    // not one it parses): read it here for the fingerprint, and leave it on req.body for @Body().
    const bodyBytes = await readUnparsedBody(req, http.maxBodyBytes);
    if (bodyBytes === 'too-large') {
      drainRefusedBody(req);
      return of(answer(res, requestTooLarge(http.maxBodyBytes), route));
    }
    if (bodyBytes === 'aborted') throw new Error('the client went away before its request body arrived');
    const info: HttpRequestInfo = {
      method: req.method ?? 'POST',
      route: (this.#options.route ?? routeOf)(req),
      url: req.originalUrl ?? req.url,
      header,
      body: req.body,
      bodyBytes,
    };
    const decision = await http.begin(info);
    if (decision.action === 'respond') return of(answer(res, decision.response, route));
    if (decision.action === 'pass') {
      setPassHeaders(decision, (name, value) => res.setHeader(name, value));
      return next.handle();
    }

    const { recording } = decision;
    recordServerResponse(res, recording);
    return next.handle().pipe(
      catchError((error: unknown) =>
        defer(async () => {
          // A thrown error may have left the work half done: release before the exception
          // filter answers, so that a retry runs again whatever the policy. An HttpException
          // is a deliberate answer, recorded like a returned value.
          if (!(error instanceof HttpException)) await recording.abort();
          throw error;
        }),
      ),
    );
  }

  #setupOf(context: ExecutionContext): RouteSetup | null {
    const handler = context.getHandler();
    const known = this.#byHandler.get(handler);
    if (known !== undefined) return known;
    const controller = context.getClass();
    const onHandler = metadataOf(handler);
    const onClass = metadataOf(controller);
    const setting = mergeRouteSettings(onClass, onHandler) ?? this.#options.protect === 'all';
    const http = this.#httpFor(setting);
    const setup = http === undefined ? null : { http, writesItsResponse: writesItsResponse(controller, handler) };
    this.#byHandler.set(handler, setup);
    return setup;
  }
}

function metadataOf(target: object): IdempotentRouteOptions | false | undefined {
  return Reflect.getMetadata(IDEMPOTENT_METADATA, target) as IdempotentRouteOptions | false | undefined;
}

/** The Express route pattern, with the router's mount path (global prefix, versions). */
function routeOf(req: NestExpressRequest): string {
  const pattern = req.route?.path;
  if (typeof pattern === 'string') return `${req.baseUrl ?? ''}${pattern}`;
  return `${req.baseUrl ?? ''}${req.path ?? (req.url ?? '/').split('?')[0]}`;
}

/**
 * Nest's rule for "the handler sends the response itself": a `@Res()` or `@Next()` parameter,
 * unless `passthrough` is set. Nest then sends nothing the interceptor returns.
 */
function writesItsResponse(controller: object, handler: Handler): boolean {
  const key = methodKeyOf(controller, handler);
  if (key === undefined) return false;
  const params = (Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, key) ?? {}) as Record<string, unknown>;
  const usesResponse = Object.keys(params).some((param) => RESPONSE_PARAM_TYPES.has(param.split(':')[0] ?? ''));
  return usesResponse && Reflect.getMetadata(RESPONSE_PASSTHROUGH_METADATA, controller, key) !== true;
}

/** The property under which the controller (or a class it extends) holds `handler`. */
function methodKeyOf(controller: object, handler: Handler): string | symbol | undefined {
  for (let proto = (controller as { prototype?: object }).prototype; proto; proto = Object.getPrototypeOf(proto)) {
    const key = Reflect.ownKeys(proto).find(
      (name) => name !== 'constructor' && Object.getOwnPropertyDescriptor(proto, name)?.value === handler,
    );
    if (key !== undefined) return key;
  }
  return undefined;
}

/**
 * Answers instead of the handler. A handler that writes its own response (`@Res()`) leaves Nest
 * nothing to send, so the stored bytes are written here. Otherwise Nest sends what the
 * interceptor returns: status and headers go on the response, the bytes as a StreamableFile,
 * which the platform sends untouched (and serializers let through).
 */
function answer(res: ServerResponse, response: HttpResponseData, route: RouteSetup): StreamableFile | undefined {
  if (route.writesItsResponse) {
    sendResponse(res, response);
    return undefined;
  }
  res.statusCode = response.status;
  for (const [name, value] of groupHeaders(response.headers)) res.setHeader(name, value);
  return response.body.length === 0 ? undefined : new StreamableFile(response.body);
}
